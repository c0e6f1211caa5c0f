# Rack test app for test_ruby.py (qilin --plugin ruby), wrapped in Rack::Lint
# so every request and answer is checked against the Rack SPEC.
#
# /            hello
# /hello       "hello" (test_timeouts.py, as testapp answers it)
# /env         the env's string values, one "KEY=value" line each, sorted
# /echo        the request body back (read whole), with its length in X-Length
# /lines       the body's lines counted with rack.input.gets, then rewound and read again
# /stream      ?n= chunks of 1 KiB from body.each
# /file        this file, through a body that responds to to_path
# /raise       raises before answering; /raise-late raises inside body.each
# /errors      writes two lines to rack.errors
# /cookies     two Set-Cookie headers in one Rack 2 value
# /many-headers  forty X-H-N headers
# /barrier     ?n=: answers "met" once n requests wait in it together (-k gthread)
# /sleep       sleeps ?s= seconds, then answers
# /procenv     ?NAME: the process environment's NAME
# /loaded-in   the pid of the process that loaded this file (the master with --preload)
# /pid         the worker's pid
# /leak        the worker's pid, keeping 10 MiB more each time (--max-worker-memory)
# /hijack-partial  partial hijack: the head from the server, "partial hijack\n" from the app
# /hijack-thread   partial hijack whose IO a thread writes after the call returned
# /hijack-full     full hijack: the app writes its head, then echoes each line in capitals
#                  until "bye"; a POST's body is still in rack.input
require "rack"

LOADED_IN = Process.pid
LEAKED = []

class App
  def call(env)
    req_path = env["PATH_INFO"]
    case req_path
    when "/"
      [200, {"Content-Type" => "text/plain"}, ["Hello, World!"]]
    when "/env"
      lines = env.select { |_, v| v.is_a?(String) }.map { |k, v| "#{k}=#{v}" }.sort
      lines << "rack.version=#{env["rack.version"].join(".")}"
      lines << "rack.multiprocess=#{env["rack.multiprocess"]}"
      lines << "rack.multithread=#{env["rack.multithread"]}"
      [200, {"Content-Type" => "text/plain"}, [lines.join("\n")]]
    when "/echo"
      body = env["rack.input"].read
      [200, {"Content-Type" => "application/octet-stream", "X-Length" => body.bytesize.to_s},
       [body]]
    when "/lines"
      input = env["rack.input"]
      n = 0
      n += 1 while input.gets
      input.rewind
      again = input.read
      [200, {"Content-Type" => "text/plain"}, ["#{n} #{again.bytesize}"]]
    when "/stream"
      n = Rack::Utils.parse_query(env["QUERY_STRING"]).fetch("n", "3").to_i
      [200, {"Content-Type" => "text/plain"}, Enumerator.new { |y| n.times { |i| y << ("%d" % (i % 10)) * 1024 } }]
    when "/file"
      [200, {"Content-Type" => "text/plain", "Content-Length" => File.size(__FILE__).to_s},
       FileBody.new(__FILE__)]
    when "/raise"
      raise "boom before the answer"
    when "/raise-late"
      [200, {"Content-Type" => "text/plain"}, LateFailure.new]
    when "/errors"
      env["rack.errors"].puts "first line from the app"
      env["rack.errors"].write "second line"
      env["rack.errors"].flush
      [200, {"Content-Type" => "text/plain"}, ["logged"]]
    when "/cookies"
      [200, {"Content-Type" => "text/plain", "Set-Cookie" => "a=1\nb=2"}, ["two cookies"]]
    when "/many-headers"
      headers = {"Content-Type" => "text/plain"}
      40.times { |i| headers["X-H-#{i}"] = i.to_s }
      [200, headers, ["forty"]]
    when "/barrier"
      # Waits until ?n= requests are here at once (5 s at most): only
      # requests served side by side can all get "met".
      n = Rack::Utils.parse_query(env["QUERY_STRING"]).fetch("n", "2").to_i
      [200, {"Content-Type" => "text/plain"}, [BARRIER.arrive(n) ? "met" : "alone"]]
    when "/sleep"
      sleep Rack::Utils.parse_query(env["QUERY_STRING"]).fetch("s", "1").to_f
      [200, {"Content-Type" => "text/plain"}, ["slept"]]
    when "/procenv"
      [200, {"Content-Type" => "text/plain"}, [ENV.fetch(env["QUERY_STRING"], "<unset>")]]
    when "/hello"
      [200, {"Content-Type" => "text/plain", "Content-Length" => "5"}, ["hello"]]
    when "/loaded-in"
      [200, {"Content-Type" => "text/plain"}, [LOADED_IN.to_s]]
    when "/leak"
      LEAKED << "x" * (10 << 20)
      pid = Process.pid.to_s
      [200, {"Content-Type" => "text/plain", "Content-Length" => pid.bytesize.to_s}, [pid]]
    when "/pid"
      pid = Process.pid.to_s
      [200, {"Content-Type" => "text/plain", "Content-Length" => pid.bytesize.to_s}, [pid]]
    when "/hijack-partial"
      [200, {"Content-Type" => "text/plain",
             "rack.hijack" => lambda { |io| io.write("partial "); io.write("hijack\n"); io.close }},
       []]
    when "/hijack-thread"
      hijack = lambda do |io|
        Thread.new do
          3.times { |i| io.write("tick #{i}\n"); sleep 0.05 }
          io.close
        end
      end
      [200, {"Content-Type" => "text/plain", "rack.hijack" => hijack}, []]
    when "/hijack-full"
      body = env["rack.input"].read
      env["rack.hijack"].call
      io = env["rack.hijack_io"]
      io.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
      io.write("body #{body.bytesize}\n")
      line = +""
      loop do
        c = io.read(1)
        break if c.nil?
        if c == "\n"
          break if line == "bye"
          io.write(line.upcase + "\n")
          line = +""
        else
          line << c
        end
      end
      io.close
      [200, {}, []]
    else
      [404, {"Content-Type" => "text/plain"}, ["not found"]]
    end
  end
end

class Barrier
  def initialize
    @lock = Mutex.new
    @cv = ConditionVariable.new
    @count = 0
  end

  def arrive(n)
    @lock.synchronize do
      @count += 1
      @cv.broadcast
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
      while @count < n
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        break if left <= 0
        @cv.wait(@lock, left)
      end
      @count >= n
    end
  end
end
BARRIER = Barrier.new

class FileBody
  def initialize(path); @path = path; end
  def to_path; @path; end
  def each; File.open(@path, "rb") { |f| yield f.read }; end
end

class LateFailure
  def each
    yield "partial"
    raise "boom inside each"
  end
end

use Rack::Lint
use Rack::Head
run App.new
