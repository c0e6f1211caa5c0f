# Rack 3 features on a bare app (test_ruby.py): Rack::Lint 2.2 predates
# them. /stream answers with a streaming body (one that responds to call,
# not each); /finished adds a rack.response_finished callable that
# appends what it was given to the file named in $RACK3_LOG; /finished-raise
# does so and then raises; /log answers that file.
LOG = ENV.fetch("RACK3_LOG")

def note(env, status, headers, error)
  File.open(LOG, "a") do |f|
    f.puts [env["PATH_INFO"], status.inspect, headers && headers["X-Seen"],
            error && error.message].inspect
  end
end

run ->(env) {
  case env["PATH_INFO"]
  when "/stream"
    body = proc do |stream|
      stream.write("streamed ")
      stream << "by " << "call "
      stream.write(stream.read)
      stream.close
    end
    [200, {"Content-Type" => "text/plain"}, body]
  when "/finished"
    env["rack.response_finished"] << method(:note)
    [200, {"Content-Type" => "text/plain", "X-Seen" => "yes"}, ["finished"]]
  when "/finished-raise"
    env["rack.response_finished"] << method(:note)
    raise "app failed"
  when "/log"
    [200, {"Content-Type" => "text/plain"}, [File.exist?(LOG) ? File.read(LOG) : ""]]
  else
    [404, {"Content-Type" => "text/plain"}, ["not found"]]
  end
}
