-- POST /Users with an Okta-shaped user whose userName is new on every request.
--   wrk -s post_user.lua URL -- RUNID [TOKENS_FILE]
-- With TOKENS_FILE (one token a line), each request takes the next token: creates
-- spread over as many orgs.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
local report = require("report")
local counter = 0
local runid = "r"
local tid = 0
local threads = 0
local own_headers = {["Content-Type"] = "application/scim+json"}
local headers = {}
local tokens = {}

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  headers = report.with_headers(own_headers)
  runid = args[1] or tostring(os.time())
  tid = wrk.thread:get("tid") or 0
  if args[2] then
    for line in io.lines(args[2]) do
      if #line > 0 then tokens[#tokens + 1] = line end
    end
  end
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
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[counter % #tokens + 1]
  end
  return wrk.format("POST", nil, headers, string.format(body, u, u, u, u, u))
end

done = report.done
