-- GET /api/users/me with this thread's seeded access tokens in turn, as a Bearer header or
-- as the access_token cookie (BENCH_AUTH=bearer|cookie).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local requests, turn = {}, 0

function init()
  local cookie = os.getenv("BENCH_AUTH") == "cookie"
  for _, line in ipairs(my_lines(os.getenv("BENCH_TOKENS"))) do
    local access = tokens(line)
    local headers = cookie and { Cookie = "access_token=" .. access }
      or { Authorization = "Bearer " .. access }
    table.insert(requests, wrk.format("GET", "/api/users/me", headers))
  end
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end
