-- Runs one Argo CD health script against a list of fixtures and prints one line
-- per case: "ok <case>: <status>" or "FAIL <case>: ...". Used by
-- test_argocd_health.sh as: lua5.1 argocd_health_run.lua SCRIPT FIXTURES.
-- The script runs in an environment like Argo CD's (base, string, table and
-- math only; no io or os), with `obj` set to the fixture's object.
local script, fixtures = arg[1], arg[2]
local chunk = assert(loadfile(script))
local cases = assert(loadfile(fixtures))()

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deepcopy(x) end
  return t
end

local valid = {Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true}
for _, case in ipairs(cases) do
  local env = {
    obj = deepcopy(case.obj),
    ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring,
    tonumber = tonumber, select = select, error = error, pcall = pcall, unpack = unpack,
    string = string, table = table, math = math,
  }
  setfenv(chunk, env)
  local okrun, hs = pcall(chunk)
  if not okrun then
    print("FAIL " .. case.name .. ": the script raised: " .. tostring(hs))
  elseif type(hs) ~= "table" or not valid[hs.status] then
    print("FAIL " .. case.name .. ": no valid hs.status returned")
  elseif type(hs.message) ~= "string" or hs.message == "" then
    print("FAIL " .. case.name .. ": hs.message is empty")
  elseif hs.status ~= case.expect then
    print("FAIL " .. case.name .. ": want " .. case.expect .. ", got " .. hs.status .. " (" .. hs.message .. ")")
  elseif case.message ~= nil and not string.find(hs.message, case.message, 1, true) then
    print("FAIL " .. case.name .. ": message '" .. hs.message .. "' lacks '" .. case.message .. "'")
  else
    print("ok " .. case.name .. ": " .. hs.status .. " (" .. hs.message .. ")")
  end
end
