-- Shared by every scenario script (loaded with dofile): thread ids, seed files, and the
-- one RESULT line that bench/run.sh reads. Settings come from the environment because
-- done() runs in wrk's main Lua state, which never sees init()'s arguments.

-- wrk has no thread id of its own; setup() runs once per thread, in order, in the main
-- state, which keeps the threads for done().
threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Answers a script judged wrong in response(); summed over the threads in done().
bad = 0

function lines(path)
  local all = {}
  for line in io.lines(path) do
    if line ~= "" then table.insert(all, line) end
  end
  assert(#all > 0, path .. " is empty")
  return all
end

-- This thread's share of a seed file, so that no two threads use the same session.
function my_lines(path)
  local threads_n = tonumber(os.getenv("BENCH_THREADS"))
  local mine = {}
  for i, line in ipairs(lines(path)) do
    if (i - 1) % threads_n == id then table.insert(mine, line) end
  end
  assert(#mine > 0, path .. " has no line for thread " .. id)
  return mine
end

-- A seed file's line is "access_token refresh_token".
function tokens(line)
  return line:match("^(%S+) (%S+)$")
end

-- RESULT slug rps p50_ms p99_ms errors requests status_errors socket_errors
function report(summary, latency)
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  local status = e.status
  if response then
    -- The script judged every answer itself (some successes are not 2xx).
    status = 0
    for _, thread in ipairs(threads) do status = status + thread:get("bad") end
  end
  local rps = summary.requests / (summary.duration / 1e6)
  io.write(string.format("RESULT %s %.1f %.2f %.2f %d %d %d %d\n",
    os.getenv("BENCH_NAME"), rps, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, status + socket, summary.requests, status, socket))
end

done = report

-- One ready request per seeded user: a login with the right password.
function login_requests()
  local requests, password = {}, os.getenv("BENCH_PASSWORD")
  for _, email in ipairs(lines(os.getenv("BENCH_USERS"))) do
    local body = string.format('{"email":"%s","password":"%s"}', email, password)
    table.insert(requests, wrk.format("POST", "/api/auth/login",
      { ["Content-Type"] = "application/json" }, body))
  end
  return requests
end
