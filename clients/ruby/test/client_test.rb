# frozen_string_literal: true

require_relative "test_helper"

# Timetrail::Client against a real `timetrail serve`.
class ClientTest < Minitest::Test
  def client
    TestEnv.client
  end

  def test_append_read_and_conflict
    stream = TestEnv.unique("rb-friend")
    first = client.append(stream, [Timetrail.event("$put", { "name" => "Rachel" },
                                                   metadata: { "actor" => "joey" })],
                          expected_revision: "no_stream")
    assert_equal 0, first["revision"]
    assert_equal false, first["idempotent_replay"]

    err = assert_raises(Timetrail::WrongExpectedRevision) do
      client.append(stream, [Timetrail.event("$patch", { "name" => "R" })],
                    expected_revision: "no_stream")
    end
    assert_equal 409, err.status
    assert_equal "wrong_expected_revision", err.code
    assert_equal stream, err.stream
    assert_equal 0, err.actual_revision
    assert_match(/revision 0/, err.server_message)

    second = client.append(stream, [Timetrail.event("$patch", { "city" => "Paris" })],
                           expected_revision: 0)
    assert_equal 1, second["revision"]

    page = client.read_stream(stream, limit: 1)
    assert_equal [0], page["events"].map { |e| e["revision"] }
    assert_equal 1, page["next"]
    assert_equal({ "actor" => "joey" }, page["events"][0]["metadata"])
    assert_equal [0, 1], client.each_event(stream, page_size: 1).map { |e| e["revision"] }
    backward = client.read_stream(stream, backward: true, limit: 1)
    assert_equal [1], backward["events"].map { |e| e["revision"] }

    info = client.stream_info(stream, min_position: second["position"])
    assert_equal true, info["exists"]
    assert_equal 1, info["revision"]

    id = page["events"][0]["id"]
    assert_equal stream, client.event(id)["stream"]
  end

  def test_idempotent_retry_by_event_id
    stream = TestEnv.unique("rb-idem")
    events = [Timetrail.event("$put", { "n" => 1 })]
    a = client.append(stream, events)
    b = client.append(stream, events)
    assert_equal true, b["idempotent_replay"]
    assert_equal a["position"], b["position"]
  end

  def test_errors_carry_the_server_code
    err = assert_raises(Timetrail::NotFound) { client.read_stream(TestEnv.unique("rb-none")) }
    assert_equal "not_found", err.code
    assert_equal 404, err.status
    err = assert_raises(Timetrail::InvalidArgument) { client.read_stream("x", limit: 0) }
    assert_equal "invalid_argument", err.code
    err = assert_raises(Timetrail::InvalidArgument) do
      client.append(TestEnv.unique("rb-bad"), [{ "data" => {} }]) # no type
    end
    refute_empty err.server_message
    assert_raises(ArgumentError) { client.diff("x") }
    assert_raises(ArgumentError) { Timetrail::Client.new("localhost:7070") }
    assert_raises(Timetrail::ConnectionFailed) { Timetrail::Client.new("http://127.0.0.1:1").health }
  end

  def test_transaction_is_atomic
    a = TestEnv.unique("rb-acct")
    b = TestEnv.unique("rb-acct")
    client.append(a, [Timetrail.event("opened", { "balance" => 10 })])
    tx = client.transaction([
                              Timetrail.stream_append(a, [Timetrail.event("debited", { "amount" => 5 })], expected_revision: 0),
                              Timetrail.stream_append(b, [Timetrail.event("credited", { "amount" => 5 })], expected_revision: "no_stream")
                            ])
    assert_equal [a, b], tx["streams"].map { |s| s["stream"] }
    assert_raises(Timetrail::WrongExpectedRevision) do
      client.transaction([
                           Timetrail.stream_append(a, [Timetrail.event("debited")], expected_revision: 1),
                           Timetrail.stream_append(b, [Timetrail.event("credited")], expected_revision: 5)
                         ])
    end
    assert_equal 2, client.each_event(a).count # nothing of the failed transaction
    assert_equal 1, client.each_event(b).count
    log = client.read_log(from_position: tx["first_position"], limit: 2)
    assert_equal [a, b], log["events"].map { |e| e["stream"] }
  end

  def test_transaction_batch_stops_at_the_first_failure
    stream = TestEnv.unique("rb-batch")
    answer = client.transaction_batch([
                                        [Timetrail.stream_append(stream, [Timetrail.event("opened")], expected_revision: "no_stream")],
                                        [Timetrail.stream_append(stream, [Timetrail.event("closed")], expected_revision: 7)],
                                        [Timetrail.stream_append(stream, [Timetrail.event("never")])]
                                      ])
    assert_equal 1, answer["failed"]
    assert_equal [201, 409], answer["results"][0, 2].map { |r| r["status"] }
    assert_equal ["opened"], client.each_event(stream).map { |e| e["type"] }
    logged = client.each_log_event(from_position: answer["results"][0]["committed"]["position"],
                                   stream_prefix: stream, page_size: 1).to_a
    assert_equal ["opened"], logged.map { |e| e["type"] }
  end

  def test_temporal_queries
    stream = TestEnv.unique("rb-temporal")
    actor = TestEnv.unique("monica")
    client.append(stream, [Timetrail.event("$put", { "name" => "Rachel", "location" => "New York" },
                                           metadata: { "actor" => actor, "reason" => "we met" })])
    first = client.read_stream(stream)["events"][0]
    last = client.append(stream, [Timetrail.event("$patch", { "location" => "Paris" },
                                                  metadata: { "actor" => actor })])

    now = client.entity(stream, min_position: last["position"])
    assert_equal({ "name" => "Rachel", "location" => "Paris" }, now["state"])
    assert_equal "New York", client.entity(stream, at_revision: 0)["state"]["location"]
    as_of = client.entity(stream, as_of: Timetrail.parse_time(first["recorded_at"]))
    assert_equal 0, as_of["revision"]
    assert_equal "we met", as_of["metadata"]["reason"]

    history = client.history(stream, "/location")
    assert_equal ["New York", "Paris"], history["intervals"].map { |i| i["value"] }
    assert_nil history["cursor"]
    assert_equal ["New York", "Paris"],
                 client.each_history_interval(stream, "/location", page_size: 1).map { |i| i["value"] }
    paged = client.history(stream, "/location", limit: 1)
    refute_nil paged["cursor"]
    assert_equal ["Paris"],
                 client.history(stream, "/location", cursor: paged["cursor"])["intervals"].map { |i| i["value"] }

    diff = client.diff(stream, from_revision: 0, to_revision: 1)
    assert_equal [{ "op" => "replace", "path" => "/location", "value" => "Paris" }], diff["patch"]
    with_events = client.diff(stream, from_revision: 0, events: true)
    assert_equal [1], with_events["events"].map { |e| e["revision"] }

    activity = client.activity(actor: actor)
    assert_equal [1, 0], activity["events"].map { |e| e["revision"] } # newest first
    assert_equal [1], client.activity(actor: actor, types: ["$patch"])["events"].map { |e| e["revision"] }
    assert_equal [1, 0], client.each_activity(actor: actor, page_size: 1).map { |e| e["revision"] }
    since = client.activity(actor: actor, since: Timetrail.parse_time(first["recorded_at"]) + 3600)
    assert_empty since["events"]

    reverted = client.revert(stream, to_revision: 0, expected_revision: 1, actor: actor,
                                     reason: "the move was a mistake")
    assert_equal "New York",
                 client.entity(stream, min_position: reverted["position"])["state"]["location"]
  end

  def test_subscribe_resumes_after_the_last_event_delivered
    prefix = "#{TestEnv.unique('rb-sub')}/"
    written = 5.times.map { |i| client.append("#{prefix}#{i}", [Timetrail.event("tick", { "i" => i })]) }
    sub = client.subscribe(from_position: written[0]["position"], stream_prefix: prefix)
    firsts = sub.first(2)
    assert_equal [0, 1], firsts.map { |e| e["data"]["i"] }
    assert_equal written[1]["position"], sub.position

    # Calling it again reconnects with Last-Event-ID: the next event, none twice.
    more = 2.times.map { |i| client.append("#{prefix}#{5 + i}", [Timetrail.event("tick", { "i" => 5 + i })]) }
    rest = sub.first(5)
    assert_equal [2, 3, 4, 5, 6], rest.map { |e| e["data"]["i"] }
    assert_equal more.last["position"], sub.position
    assert_equal 2, sub.connections

    # A live event arrives while a reader waits; close from another thread ends the wait.
    live = Queue.new
    reader = Thread.new { sub.each { |e| live << e } }
    client.append("#{prefix}live", [Timetrail.event("tick", { "i" => 7 })])
    assert_equal 7, live.pop["data"]["i"]
    sub.close
    assert reader.join(30), "the subscription did not end after close"
    assert_equal 3, sub.connections
    assert_equal 0, sub.duplicates_skipped

    # A named consumer resumes after its acknowledged position.
    name = TestEnv.unique("rb-consumer")
    client.ack(name, written[2]["position"])
    assert_equal written[2]["position"], client.consumer(name)["position"]
    by_consumer = client.subscribe(consumer: name, stream_prefix: prefix).first(1)
    assert_equal [3], by_consumer.map { |e| e["data"]["i"] }
  end

  def test_health_integrity_and_capture_status
    assert_equal "ok", client.health["status"]
    assert_kind_of String, client.integrity_head["hash"]
    assert_equal "timetrail", client.capture_status["slot"]
    assert_kind_of Integer, client.request(:get, "/healthz")["position"]
  end
end

# A subscription across a restart of the server: it reconnects by itself and resumes after the
# last event it delivered, with nothing skipped or repeated.
class SubscriptionRestartTest < Minitest::Test
  def take(queue, count)
    Array.new(count) do
      item = Timeout.timeout(TestEnv::CAPTURE_DEADLINE) { queue.pop }
      raise item if item.is_a?(Exception)

      item
    end
  end

  def test_resumes_after_a_server_restart_without_gaps_or_repeats
    Dir.mktmpdir("timetrail-rb-restart-") do |dir|
      server = TestServer.new(File.join(dir, "data"), File.join(dir, "server.log")).start
      begin
        tt = Timetrail::Client.new(server.url)
        port = server.url[/:(\d+)\z/, 1]
        tt.append("r/1", 2.times.map { |n| Timetrail.event("e", { "n" => n }) })
        sub = tt.subscribe(stream_prefix: "r/", retry_delay: 0.05, max_retry_delay: 0.5)
        out = Queue.new
        reader = Thread.new do
          sub.each { |e| out << e }
        rescue StandardError => e
          out << e
        end
        got = take(out, 2) # stored events
        tt.append("r/1", (2..3).map { |n| Timetrail.event("e", { "n" => n }) })
        got += take(out, 2) # live events

        server.stop # ends the subscription's connection; it keeps trying to reconnect
        err = assert_raises(Timetrail::ConnectionFailed) { tt.append("r/1", [Timetrail.event("e")]) }
        assert_nil err.status
        server.start(listen: "127.0.0.1:#{port}")
        (4..6).each { |n| tt.append("r/1", [Timetrail.event("e", { "n" => n })]) }
        got += take(out, 3)

        assert_equal (0..6).to_a, got.map { |e| e["data"]["n"] }
        assert_equal (1..7).to_a, got.map { |e| e["position"] }
        assert_operator sub.connections, :>=, 2
        assert_equal 0, sub.duplicates_skipped # the server resumed after Last-Event-ID
        sub.close
        assert reader.join(30), "the subscription did not end after close"
        assert out.empty?, "an event came twice"
      ensure
        server.stop
      end
    end
  end

  def test_gives_up_without_a_server
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] } # a port nothing listens on
    sub = Timetrail::Client.new("http://127.0.0.1:#{port}")
                           .subscribe(retry_delay: 0.05, give_up_after: 0.3)
    assert_raises(Timetrail::ConnectionFailed) { sub.first(1) }
    assert_raises(Timetrail::ConnectionFailed) do
      Timetrail::Client.new("http://127.0.0.1:#{port}").subscribe(reconnect: false).first(1)
    end
  end
end
