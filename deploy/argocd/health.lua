-- Argo CD health for ecs.operator.dev TaskDefinition, Task and Service: one script for the three kinds.
-- Argo CD runs it with the object in the global `obj` and reads the returned table's status and message.
-- Lua 5.1 (Argo CD's gopher-lua): no integer division, no goto.
-- Decisions and their reasons: deploy/argocd/README.md.

local hs = {}

local function health(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function message_of(c, default)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return default
end

-- The status describes an older spec (or none yet): nothing can be concluded from it.
local function unobserved()
  local status = obj.status
  if status == nil then
    return "waiting for the operator to observe the " .. obj.kind
  end
  local generation = (obj.metadata or {}).generation
  local observed = status.observedGeneration
  if generation ~= nil and (observed == nil or observed < generation) then
    return string.format("waiting for the operator to observe generation %d", generation)
  end
  return nil
end

local function task_definition()
  local waiting = unobserved()
  if waiting ~= nil then
    return health("Progressing", waiting)
  end
  local ready = condition(obj.status, "Ready")
  if ready == nil then
    return health("Progressing", "waiting for the first revision to be registered")
  end
  if ready.status == "True" then
    return health("Healthy", message_of(ready, "registered"))
  end
  if ready.status == "False" then
    return health("Degraded", message_of(ready, ready.reason))
  end
  return health("Progressing", message_of(ready, "registering"))
end

-- "stopCode: stoppedReason", as DescribeTasks would show them.
local function stop_detail(status)
  local code = status.stopCode or ""
  local reason = status.stoppedReason or ""
  if reason ~= "" then
    return code .. ": " .. reason
  end
  return code
end

-- A STOPPED task never runs again, so its health is final whatever later spec edits say.
local function stopped_task(status)
  local code = status.stopCode or ""
  local detail = stop_detail(status)
  if code == "TaskFailedToStart" then
    return health("Degraded", "task failed to start (" .. detail .. ")")
  end
  if code == "UserInitiated" or code == "ServiceSchedulerInitiated" then
    -- Stopped because it was asked to: desiredStatus STOPPED is reached.
    return health("Healthy", "task stopped as requested (" .. detail .. ")")
  end
  if code == "EssentialContainerExited" then
    for _, c in ipairs(status.containers or {}) do
      -- ECS treats a container as essential unless it says otherwise.
      if c.essential ~= false then
        if c.exitCode == nil then
          return health("Degraded", "essential container " .. c.name .. " stopped without an exit code (" .. detail .. ")")
        end
        if c.exitCode ~= 0 then
          return health("Degraded", string.format("essential container %s exited with code %d (%s)", c.name, c.exitCode, detail))
        end
      end
    end
    return health("Healthy", "task completed: every essential container exited with code 0")
  end
  -- Evicted, node lost, pod deleted from outside: the task did not get to finish.
  return health("Degraded", "task stopped (" .. detail .. ")")
end

local function task()
  local status = obj.status
  if status ~= nil and status.lastStatus == "STOPPED" then
    return stopped_task(status)
  end
  local waiting = unobserved()
  if waiting ~= nil then
    return health("Progressing", waiting)
  end
  local last = status.lastStatus or "PROVISIONING"
  if last == "DEACTIVATING" or last == "STOPPING" then
    return health("Progressing", "the task is " .. last .. " (" .. stop_detail(status) .. ")")
  end
  local ready = condition(status, "Ready")
  if last == "RUNNING" then
    if ready ~= nil and ready.status == "True" then
      return health("Healthy", message_of(ready, "the task is RUNNING"))
    end
    if status.healthStatus == "UNHEALTHY" then
      return health("Degraded", message_of(ready, "an essential container is UNHEALTHY"))
    end
  end
  return health("Progressing", message_of(ready, "the task is " .. last))
end

local function service()
  local waiting = unobserved()
  if waiting ~= nil then
    return health("Progressing", waiting)
  end
  local status = obj.status
  local degraded = condition(status, "Degraded")
  if degraded ~= nil and degraded.status == "True" then
    return health("Degraded", message_of(degraded, degraded.reason))
  end
  local failed = status.rolloutState == "FAILED"
  for _, d in ipairs(status.deployments or {}) do
    if d.status == "PRIMARY" and d.rolloutState == "FAILED" then
      failed = true
    end
  end
  if failed then
    return health("Degraded", "deployment failed: " .. message_of(condition(status, "Progressing"), "rolloutState FAILED"))
  end
  -- A daemon service's count follows the nodes; only a replica service is scaled to zero on purpose.
  local spec = obj.spec or {}
  local desired = spec.desiredCount
  if desired == nil then
    desired = status.desiredCount
  end
  if (spec.schedulingStrategy or "REPLICA") == "REPLICA" and desired == 0 then
    local left = (status.runningCount or 0) + (status.pendingCount or 0)
    if left > 0 then
      return health("Progressing", string.format("scaled to 0: stopping %d tasks", left))
    end
    return health("Suspended", "scaled to 0 (desiredCount 0)")
  end
  -- Tasks no node can take: still Progressing (capacity may come, as on ECS), saying why.
  local placed = condition(status, "TasksPlaced")
  if placed ~= nil and placed.status == "False" then
    return health("Progressing", "unable to place a task: " .. message_of(placed, placed.reason))
  end
  local ready = condition(status, "Ready")
  if ready ~= nil and ready.status == "True" then
    return health("Healthy", message_of(ready, "steady state"))
  end
  local progressing = condition(status, "Progressing")
  if progressing ~= nil and progressing.message ~= nil and progressing.message ~= "" then
    return health("Progressing", progressing.message)
  end
  return health("Progressing", message_of(ready, "waiting for the service to reach a steady state"))
end

if obj.kind == "TaskDefinition" then
  return task_definition()
elseif obj.kind == "Task" then
  return task()
elseif obj.kind == "Service" then
  return service()
end
return health("Unknown", "not an ecs.operator.dev kind: " .. tostring(obj.kind))
