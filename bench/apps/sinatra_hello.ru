# Bench app: Sinatra's hello world (Debian's ruby-sinatra), classic-free (modular).
require "sinatra/base"

class Hello < Sinatra::Base
  set :environment, :production
  set :logging, false
  get("/") { "Hello, World!" }
end

run Hello
