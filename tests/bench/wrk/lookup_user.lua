-- Okta's lookup before a create: GET ?filter=userName eq "<a seeded user>".
--   wrk -s lookup_user.lua URL -- USERS FORMAT   (FORMAT: string.format pattern of a userName)
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local report = require("report")
local users = 100000
local format = "user%d@example.com"
local first = 1
local path = "/"
local own_headers = {["Accept"] = "application/scim+json"}
local headers = {}

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  headers = report.with_headers(own_headers)
  users = tonumber(args[1] or "100000")
  format = args[2] or format
  first = tonumber(args[3] or "1")
  path = wrk.path
  math.randomseed(os.time() + (wrk.thread:get("seed") or 0))
end

function request()
  local name = string.format(format, math.random(first, first + users - 1))
  return wrk.format("GET", path .. "?filter=userName%20eq%20%22" .. name .. "%22", headers)
end

done = report.done
