-- wrk script: POSTs a ~3.7 KB candidate/new body, unique per request (the
-- candidate id and a counter change), with the bearer token from $TOKEN.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

local f = io.open(os.getenv("BODY_FILE"), "r")
local template = f:read("*a")
f:close()
local token = os.getenv("TOKEN") or "bench"

function request()
  counter = counter + 1
  local unique = string.format("%08x-%04x-4000-8000-%012x", counter, tid or 0, os.time())
  local body = template:gsub("aed6532d%-2438%-4e33%-b15b%-1f1a20ba1c16", unique)
  return wrk.format("POST", "/webhooks/jobylon", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end
