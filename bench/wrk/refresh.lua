-- POST /api/auth/refresh, each refresh token presented once. Each thread keeps a pool of
-- unused refresh tokens: a request takes one, its answer gives back the successor. wrk
-- sends a connection's next request only after its answer, so a pool seeded with one
-- session per connection never runs dry while all goes well. bench/run.sh seeds one more
-- per thread: before the run wrk calls request() once to check it, and never sends it.
--
-- The token travels as a Bearer header so that the successor comes back in the JSON body:
-- wrk keeps one header per name, and the refresh_token cookie is not the last Set-Cookie.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local pool = {}

function init()
  for _, line in ipairs(my_lines(os.getenv("BENCH_TOKENS"))) do
    local _, refresh = tokens(line)
    table.insert(pool, refresh)
  end
end

function request()
  -- An empty pool means answers went wrong; the request then fails and is counted.
  local token = table.remove(pool) or "no-token-left"
  return wrk.format("POST", "/api/auth/refresh", { Authorization = "Bearer " .. token })
end

function response(status, headers, body)
  local successor = status == 200 and body:match('"refresh_token":"([^"]+)"')
  if successor then
    table.insert(pool, successor)
  else
    bad = bad + 1
  end
end
