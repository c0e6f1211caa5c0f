# A Sinatra app (Debian's ruby-sinatra) for test_ruby.py, under Rack::Lint.
#
# /                 hello            /hello/:name   a route parameter
# POST /form        a + b from an urlencoded form
# POST /upload      a multipart file: its name, size and MD5
# /stream           three parts through Sinatra's stream helper
# /file             this file through send_file
# /etag             an ETag, so If-None-Match gets a 304
require "digest"
require "sinatra/base"

class SinatraApp < Sinatra::Base
  set :environment, :production
  set :logging, false

  get("/") { "Hello from Sinatra" }
  get("/hello/:name") { "Hello, #{params[:name]}!" }
  post("/form") { "#{params[:a]}+#{params[:b]}" }
  post "/upload" do
    f = params[:file]
    "#{f[:filename]} #{f[:tempfile].size} #{Digest::MD5.file(f[:tempfile].path).hexdigest}"
  end
  get "/stream" do
    stream { |out| 3.times { |i| out << "part#{i}\n" } }
  end
  get("/file") { send_file __FILE__, type: "text/plain" }
  get "/etag" do
    etag "v1"
    "tagged"
  end
end

use Rack::Lint
run SinatraApp
