-- A plain GET of wrk's URL: the unknown route and the healthchecker. The request is
-- static, so wrk sends it at full speed without calling into Lua.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local expect = tonumber(os.getenv("BENCH_EXPECT") or "")
if expect then
  -- wrk counts every status over 399 as an error; a 404 that is the right answer can only
  -- be told apart from a 5xx here, at some cost per answer.
  function response(status)
    if status ~= expect then bad = bad + 1 end
  end
end
