-- POST /Users with an Okta-shaped user whose userName is new on every request.
--   wrk -s post_user.lua URL -- RUNID
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local report = require("report")
local counter = 0
local runid = "r"
local tid = 0
local threads = 0
local own_headers = {["Content-Type"] = "application/scim+json"}
local headers = {}

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  headers = report.with_headers(own_headers)
  runid = args[1] or tostring(os.time())
  tid = wrk.thread:get("tid") or 0
end

local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],' ..
  '"userName":"%s@example.com","externalId":"ext-%s",' ..
  '"name":{"givenName":"Bench","familyName":"User %s"},' ..
  '"displayName":"Bench User %s",' ..
  '"emails":[{"value":"%s@example.com","type":"work","primary":true}],' ..
  '"active":true}'

function request()
  counter = counter + 1
  local u = string.format("b%s-%d-%d", runid, tid, counter)
  return wrk.format("POST", nil, headers, string.format(body, u, u, u, u, u))
end

done = report.done
