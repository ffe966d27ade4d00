# frozen_string_literal: true

# Shared by the tests: a real PostgreSQL (tests/support/with_postgres.sh exports
# TIMETRAIL_PG_URL) prepared for the capture, and a real `timetrail serve --capture` on a free
# port, started once for the whole run and stopped at its end.
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)

require "minitest/autorun"
require "fileutils"
require "pg"
require "securerandom"
require "timeout"
require "tmpdir"
require "timetrail"

module TestEnv
  REPO = File.expand_path("../../..", __dir__)
  # How long the capture may take to record a change before a test fails; generous, as the
  # machine may be busy. Polls end as soon as the events are there.
  CAPTURE_DEADLINE = 120

  module_function

  def pg_url
    ENV["TIMETRAIL_PG_URL"] or
      abort "TIMETRAIL_PG_URL is not set: run the tests under tests/support/with_postgres.sh"
  end

  def timetrail_bin
    ENV["TIMETRAIL_BIN"] or
      abort "TIMETRAIL_BIN is not set: the path of the timetrail command (CTest sets it)"
  end

  # The tables the tests write, the context trigger on each, the publication and the slot.
  # The slot is made here, before the server starts, so every change after this point is
  # captured (the capture reuses an existing slot); the publication must exist before it.
  def prepare_database
    pg = PG.connect(pg_url)
    pg.exec(<<~SQL)
      CREATE TABLE IF NOT EXISTS orders (
        id bigserial PRIMARY KEY, status text NOT NULL, note text, amount numeric);
    SQL
    pg.exec(File.read(File.join(REPO, "sql/timetrail_context.sql")))
    if pg.exec("SELECT 1 FROM pg_publication WHERE pubname = 'timetrail'").ntuples.zero?
      pg.exec("CREATE PUBLICATION timetrail FOR ALL TABLES")
    end
    tables = pg.exec("SELECT timetrail.track_context_for_publication('timetrail')").getvalue(0, 0)
    raise "the context trigger went on no table" unless tables.to_i >= 1

    if pg.exec("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'timetrail'").ntuples.zero?
      pg.exec("SELECT pg_create_logical_replication_slot('timetrail', 'pgoutput')")
    end
  ensure
    pg&.close
  end

  # The shared server: `timetrail serve --capture` of the test database, port 0.
  def server
    @server ||= begin
      prepare_database
      dir = Dir.mktmpdir("timetrail-rb-")
      server = TestServer.new(File.join(dir, "data"), File.join(dir, "server.log"))
      server.start(extra: ["--capture", pg_url])
      Minitest.after_run do
        server.stop
        FileUtils.rm_rf(dir)
      end
      server
    end
  end

  def client
    @client ||= Timetrail::Client.new(server.url)
  end

  # The events of +stream+ once there are at least +count+ (the capture records a change a
  # moment after its commit): polls until then, fails after CAPTURE_DEADLINE seconds.
  def wait_for_events(stream, count)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + CAPTURE_DEADLINE
    loop do
      events = begin
        client.each_event(stream).to_a
      rescue Timetrail::NotFound
        []
      end
      return events if events.size >= count

      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        raise Minitest::Assertion,
              "#{stream}: #{events.size} events after #{CAPTURE_DEADLINE} s, expected " \
              "#{count}\nserver log (end):\n#{server.log_tail}"
      end
      sleep 0.05
    end
  end

  def unique(prefix)
    "#{prefix}-#{SecureRandom.hex(6)}"
  end
end

# `timetrail serve --auth off` on a data directory; its log goes to +log+.
class TestServer
  attr_reader :url

  def initialize(data_dir, log)
    @data_dir = data_dir
    @log = log
    @pid = nil
  end

  # Starts it and reads the URL from the first line it prints ("listening on http://...").
  # Tries again for a while when it cannot listen (the port of a restart may still be taken).
  def start(listen: "127.0.0.1:0", extra: [])
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    loop do
      out_r, out_w = IO.pipe
      pid = Process.spawn(TestEnv.timetrail_bin, "serve", "--data", @data_dir, "--listen", listen,
                          "--auth", "off", *extra, out: out_w, err: [@log, "a"])
      out_w.close
      line = Timeout.timeout(60) { out_r.gets }
      if (url = line && line[%r{\Alistening on (http://\S+)}, 1])
        @pid = pid
        @url = url
        Thread.new { IO.copy_stream(out_r, IO::NULL) } # keep its stdout drained
        return self
      end
      Process.wait(pid)
      out_r.close
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        raise "timetrail serve did not start (#{line.inspect}):\n#{log_tail}"
      end

      sleep 0.2
    end
  end

  # SIGTERM, and the exit code must be 0.
  def stop
    return unless @pid

    Process.kill("TERM", @pid)
    _, status = Process.wait2(@pid)
    @pid = nil
    raise "timetrail serve exited with #{status.inspect}:\n#{log_tail}" unless status.success?
  end

  def log_tail
    text = File.exist?(@log) ? File.read(@log) : ""
    text.size > 4000 ? text[-4000..] : text
  end
end

require "active_record"
require "timetrail/active_record"

# A row of the test table "orders"; each is captured as stream public.orders/ID.
class Order < ActiveRecord::Base
  def stream
    "public.orders/#{id}"
  end
end

# ActiveRecord on the test database, with the timetrail integration installed.
module ArEnv
  module_function

  def setup
    return if @done

    TestEnv.server # the database is prepared and the capture runs before any write
    ActiveRecord::Base.establish_connection(TestEnv.pg_url)
    Timetrail::ActiveRecord.install!
    @done = true
  end
end
