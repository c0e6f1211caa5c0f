# The conformance corpus's app on the ruby plugin (test_conformance.py), the
# twin of tests/apps/echoapp.py: answers every request with what it saw as
# JSON, under the WSGI names the corpus compares, mapped as a Rack-to-WSGI
# adapter would map them: PATH_INFO percent-decoded once (its bytes as
# latin-1 text), RAW_URI from REQUEST_URI, wsgi.url_scheme from
# rack.url_scheme, wsgi.input_terminated true (a Rack input always ends).
# Reads the whole body first. Under Rack::Lint, so every row's env and
# answer is checked against the Rack SPEC too.
require "json"
require "rack"

KEYS = %w[REQUEST_METHOD SCRIPT_NAME QUERY_STRING SERVER_PROTOCOL CONTENT_TYPE CONTENT_LENGTH
          REMOTE_ADDR].freeze

def latin1(s)
  s.b.force_encoding(Encoding::ISO_8859_1).encode(Encoding::UTF_8)
end

echo = lambda do |env|
  body = env["rack.input"].read
  out = {}
  KEYS.each { |k| out[k] = latin1(env[k]) if env.key?(k) }
  env.each { |k, v| out[k] = latin1(v) if k.start_with?("HTTP_") }
  out["PATH_INFO"] = latin1(Rack::Utils.unescape_path(env["PATH_INFO"]))
  out["RAW_URI"] = latin1(env["REQUEST_URI"])
  out["wsgi.url_scheme"] = env["rack.url_scheme"]
  out["wsgi.input_terminated"] = true
  out["body"] = latin1(body)
  out["pid"] = Process.pid
  data = JSON.generate(out)
  [200, {"Content-Type" => "application/json", "Content-Length" => data.bytesize.to_s}, [data]]
end

use Rack::Lint
use Rack::Head
run echo
