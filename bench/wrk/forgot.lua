-- POST /api/auth/forgot-password for one address, BENCH_EMAIL: run once with a seeded
-- user's address and once with an address that has no account. The answers must not tell
-- them apart: the same 202, at the same speed (the lookup and the mail happen off the
-- request path). The request is the same every time; wrk builds it once.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"email":"%s"}', assert(os.getenv("BENCH_EMAIL"), "BENCH_EMAIL is not set"))

-- Anything but 202 is an error (wrk itself would count only statuses over 399).
function response(status)
  if status ~= 202 then bad = bad + 1 end
end
