-- POST /api/auth/login with the right password, the seeded users in turn. Each answer
-- starts a session that nobody uses again.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local requests, turn = {}, 0

function init()
  requests = login_requests()
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end
