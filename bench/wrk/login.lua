-- POST /api/auth/login with the right password, the seeded users in turn. Each answer
-- starts a session that nobody uses again.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local requests, turn = {}, 0

function init()
  local password = os.getenv("BENCH_PASSWORD")
  for _, email in ipairs(lines(os.getenv("BENCH_USERS"))) do
    local body = string.format('{"email":"%s","password":"%s"}', email, password)
    table.insert(requests, wrk.format("POST", "/api/auth/login",
      { ["Content-Type"] = "application/json" }, body))
  end
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end
