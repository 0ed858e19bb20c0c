-- One benchmark case for wrk: send prepared requests in turn, check every answer.
--
--   wrk -s check.lua URL -- REQUESTS RESULT THREADS STATUS [HEADER PREFIX]...
--
-- REQUESTS holds whole HTTP requests separated by NUL bytes (bench/prepared.py
-- writes them: every person's own credentials, cookie or token). An answer
-- is as expected when its status is STATUS and each HEADER starts with its
-- PREFIX; every other answer is counted, and the first few are described.
-- When the run is over, RESULT receives the counts and wrk's whole latency
-- histogram (microseconds and how many answers took that long), so that
-- rounds can be merged exactly.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local content = file:read("*a")
  file:close()
  prepared = {}
  for one in content:gmatch("[^%z]+") do
    prepared[#prepared + 1] = one
  end
  result_path = args[2]
  local thread_count = tonumber(args[3])
  expected_status = tonumber(args[4])
  expected_headers = {}
  for i = 5, #args, 2 do
    expected_headers[#expected_headers + 1] = { args[i]:lower(), args[i + 1] }
  end
  -- Threads start far apart in the list: they do not ask for one person at once.
  position = math.floor(id * #prepared / thread_count)
  unexpected = 0
  examples = ""
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

local function header(headers, lower_name)
  for name, value in pairs(headers) do
    if name:lower() == lower_name then
      return value
    end
  end
  return nil
end

function response(status, headers, body)
  local problem = nil
  if status ~= expected_status then
    problem = "status " .. status
  else
    for _, check in ipairs(expected_headers) do
      local value = header(headers, check[1])
      if value == nil or value:sub(1, #check[2]) ~= check[2] then
        problem = check[1] .. ": " .. tostring(value):sub(1, 60)
        break
      end
    end
  end
  if problem then
    unexpected = unexpected + 1
    if unexpected <= 3 then
      examples = examples .. problem:gsub("[\r\n]", " ") .. "\n"
    end
  end
end

function done(summary, latency, requests)
  local wrong, described = 0, ""
  for _, thread in ipairs(threads) do
    wrong = wrong + thread:get("unexpected")
    described = described .. thread:get("examples")
  end
  local out = assert(io.open(threads[1]:get("result_path"), "w"))
  local errors = summary.errors
  out:write(string.format("requests %d\n", summary.requests))
  out:write(string.format("duration_us %d\n", summary.duration))
  out:write(string.format("unexpected %d\n", wrong))
  out:write(string.format("socket_errors %d\n", errors.connect + errors.read + errors.write))
  out:write(string.format("timeouts %d\n", errors.timeout))
  for i = 1, #latency do
    local value, count = latency(i)
    out:write(string.format("latency %d %d\n", value, count))
  end
  for line in described:gmatch("[^\n]+") do
    out:write("example ", line, "\n")
  end
  out:close()
end
