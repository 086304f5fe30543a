-- POST /api/auth/register, a new email each time: thread id and counter. The database is
-- new in every pass, so they cannot collide with an earlier run.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local password = os.getenv("BENCH_PASSWORD")
local sent = 0

function request()
  sent = sent + 1
  local body = string.format(
    '{"name":"Bench","email":"reg-%d-%d@example.com","password":"%s","passwordConfirm":"%s"}',
    id, sent, password, password)
  return wrk.format("POST", "/api/auth/register", { ["Content-Type"] = "application/json" }, body)
end
