-- A single-page app's traffic: 90% GET /api/users/me, 8% refresh, 2% login, drawn at
-- random per request. Each thread holds its seeded sessions; me uses the current access
-- token of an idle session, refresh takes a session out until its answer brings the new
-- pair (so no refresh token is presented twice, and me never uses a replaced access
-- token). Tokens travel as Bearer headers, for the reason given in refresh.lua. Login
-- answers start sessions that are not used further.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ME, REFRESH = 0.90, 0.08
local idle, logins, turn = {}, {}, 0
sent = { me = 0, refresh = 0, login = 0 }

local function session(access, refresh)
  return {
    me = wrk.format("GET", "/api/users/me", { Authorization = "Bearer " .. access }),
    refresh = wrk.format("POST", "/api/auth/refresh", { Authorization = "Bearer " .. refresh }),
  }
end

function init()
  math.randomseed(os.time() + id)
  for _, line in ipairs(my_lines(os.getenv("BENCH_TOKENS"))) do
    table.insert(idle, session(tokens(line)))
  end
  logins = login_requests()
end

function request()
  local draw = math.random()
  if #idle > 0 and draw < ME then
    sent.me = sent.me + 1
    return idle[math.random(#idle)].me
  elseif #idle > 1 and draw < ME + REFRESH then
    sent.refresh = sent.refresh + 1
    return table.remove(idle, math.random(#idle)).refresh
  end
  sent.login = sent.login + 1
  turn = turn % #logins + 1
  return logins[turn]
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    return
  end
  -- Only a refresh answer carries a refresh token (login's is in a cookie).
  local refresh = body:match('"refresh_token":"([^"]+)"')
  if refresh then
    table.insert(idle, session(body:match('"access_token":"([^"]+)"'), refresh))
  end
end

function done(summary, latency)
  report(summary, latency)
  local total = { me = 0, refresh = 0, login = 0 }
  for _, thread in ipairs(threads) do
    local counts = thread:get("sent")
    for kind, n in pairs(counts) do total[kind] = total[kind] + n end
  end
  io.write(string.format("MIX me=%d refresh=%d login=%d\n", total.me, total.refresh, total.login))
end
