-- Argo CD health of a governance.kfm.dev PolicyBundle, from its phase and
-- kstatus conditions. Lua 5.1 (Argo CD runs gopher-lua); `obj` is the resource.
local function condition(status, kind)
  if status == nil or status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then return c end
  end
  return nil
end

local function say(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then return c.message end
  return fallback
end

local hs = {}
local status = obj.status
local generation = obj.metadata and obj.metadata.generation

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local phase = status.phase or "Pending"
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = say(stalled, "Stalled: " .. tostring(stalled.reason))
  return hs
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = say(ready, "Phase Failed")
  return hs
end
if ready ~= nil and ready.status == "True" and
   (generation == nil or ready.observedGeneration == nil or ready.observedGeneration == generation) then
  hs.status = "Healthy"
  hs.message = say(ready, "Bundle published")
  return hs
end
hs.status = "Progressing"
hs.message = say(condition(status, "Reconciling"), say(ready, "Phase " .. phase))
return hs
