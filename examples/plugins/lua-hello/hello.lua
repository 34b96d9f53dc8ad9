-- lua-hello: the Lua twin of examples/plugins/cpp-hello (README.md). A plugin is a file that
-- returns this table; each capability is named "<name>.<key>", here lua-hello.greet.
return {
  name = "lua-hello",
  version = "1.0.0",
  description = "Greets people (the SDK example, in Lua)",
  capabilities = {
    greet = {
      kind = "step",
      description = "Says hello to someone",
      -- A JSON Schema as a table; properties without additionalProperties is closed, so a
      -- misspelt field in `with:` is reported by herald validate.
      input = {
        type = "object",
        required = { "name" },
        properties = {
          name = { type = "string", minLength = 1, description = "Who to greet" },
          greeting = { type = "string", minLength = 1, description = "Instead of Hello" },
          times = { type = "integer", minimum = 1, maximum = 5 },
        },
      },
      run = function(input, ctx)
        if input.name == "nobody" then
          -- nil, err fails the step; a table keeps the code (a string would be failed_precondition).
          return nil, { code = "invalid_argument", message = "lua-hello: nobody to greet" }
        end
        herald.log("info", "greeting " .. input.name .. " (attempt " .. ctx.attempt .. ")")
        local greeting = (input.greeting or "Hello") .. ", " .. input.name .. "!"
        local all = herald.json.array({})
        for i = 1, input.times or 1 do all[i] = greeting end
        return { greeting = greeting, all = all, at = herald.now() }
      end,
    },
  },
}
