# frozen_string_literal: true

require "json"
require "net/http"
require "openssl"
require "securerandom"
require "time"
require "uri"

module Timetrail
  # Formats a time as the API takes it: a Time (or DateTime) as RFC 3339 UTC with
  # microseconds, a Date as YYYY-MM-DD, an Integer as microseconds since the epoch, a String as
  # it is.
  def self.format_time(value)
    case value
    when Time then value.getutc.strftime("%Y-%m-%dT%H:%M:%S.%6NZ")
    when DateTime then format_time(value.to_time)
    when Date then value.iso8601
    when Integer, String then value.to_s
    else raise ArgumentError, "not a time: #{value.inspect} (use a Time, Date, String or Integer)"
    end
  end

  # Parses a time the API returns ("2026-11-22T13:40:00.000000Z") into a UTC Time.
  def self.parse_time(value)
    Time.iso8601(value).utc
  end

  # An event to append. It gets a fresh UUID unless +id+ is given, so that sending the same
  # events again after a failure is answered as an idempotent replay, not stored twice.
  def self.event(type, data = nil, metadata: nil, id: nil, valid_from: nil)
    event = { "id" => id || SecureRandom.uuid, "type" => type }
    event["data"] = data unless data.nil?
    event["metadata"] = metadata unless metadata.nil?
    event["valid_from"] = format_time(valid_from) unless valid_from.nil?
    event
  end

  # One stream's part of a transaction (see Client#transaction).
  def self.stream_append(stream, events, expected_revision: "any")
    { "stream" => stream, "expected_revision" => expected_revision, "events" => events.to_a }
  end

  # A timetrail server (`timetrail serve`) at +base_url+, e.g. "http://127.0.0.1:7070".
  #
  # +token+ is an API token sent as "Authorization: Bearer"; +timeout+ the socket timeout of a
  # request in seconds. Every read takes +min_position+ (a +position+ that a write answered)
  # and +timeout_ms+: the server then waits until that position is readable. Failures raise a
  # Timetrail::Error subclass (WrongExpectedRevision, NotFound, InvalidArgument, ...). One
  # client may be shared by threads: each request takes a kept-alive connection of its own.
  class Client
    # Kept-alive connections idle longer than this are not reused: the server closes idle ones
    # (--idle-timeout-ms, 30 s by default), and a write must not meet a closed connection.
    MAX_IDLE_SECONDS = 10

    attr_reader :base_url, :token, :timeout

    def initialize(base_url = "http://127.0.0.1:7070", token: nil, timeout: 30,
                   ssl_context: nil)
      @uri = URI(base_url.to_s.chomp("/"))
      unless %w[http https].include?(@uri.scheme) && @uri.host
        raise ArgumentError, "base_url must be http://HOST:PORT or https://HOST:PORT, " \
                             "not #{base_url.inspect}"
      end
      @base_url = @uri.to_s
      @token = token
      @timeout = timeout
      @ssl_context = ssl_context
      @idle = []
      @lock = Mutex.new
    end

    # -- plumbing -------------------------------------------------------------------------

    # Sends one request to +path+ ("/v1/...") and returns the parsed JSON answer. nil query
    # values are left out, true/false become "true"/"false", arrays are joined with commas.
    # Use it for endpoints this class does not wrap (/v1/tokens, /v1/backup, ...).
    def request(method, path, query: nil, body: nil, headers: {}, timeout: nil)
      full = @uri.path + path
      q = Client.query_string(query || {})
      full += "?#{q}" unless q.empty?
      req = Net::HTTPGenericRequest.new(method.to_s.upcase, !body.nil?, true, full,
                                        request_headers.merge(headers))
      unless body.nil?
        req["Content-Type"] = "application/json"
        req.body = JSON.generate(body)
      end
      response = with_connection(timeout || @timeout) { |http| http.request(req) }
      parsed = parse_json(response.body)
      code = response.code.to_i
      raise Timetrail.error_from_response(code, parsed) unless (200..299).cover?(code)

      parsed
    end

    # -- writing --------------------------------------------------------------------------

    # Appends +events+ (see Timetrail.event) to +stream+. +expected_revision+ is "any" (the
    # server's default), "no_stream", "exists" or the revision the stream must be at;
    # otherwise WrongExpectedRevision is raised. Returns {"stream", "first_revision",
    # "revision", "first_position", "position", "tx", "recorded_at", "idempotent_replay"}.
    def append(stream, events, expected_revision: nil)
      body = { "events" => events.to_a }
      body["expected_revision"] = expected_revision unless expected_revision.nil?
      request(:post, "/v1/streams/#{Client.segment(stream)}", body: body)
    end

    # Appends to several streams atomically: +appends+ are Timetrail.stream_append hashes.
    # Returns {"tx", "first_position", "position", "recorded_at", "idempotent_replay",
    # "streams" => [{"stream", "first_revision", "revision", "first_position", "position"}]}.
    def transaction(appends)
      request(:post, "/v1/transactions", body: { "appends" => appends.to_a })
    end

    # Commits many transactions in order (a bulk load); each item is an Array of
    # Timetrail.stream_append hashes. It stops at the first that fails without raising for it:
    # the answer is {"results" => [{"status", "committed" or "error"}], "failed" => index or
    # nil}, where everything before "failed" is stored and nothing after it. A batch refused as
    # a whole (malformed, forbidden, too large) stores nothing and raises.
    def transaction_batch(transactions)
      body = { "transactions" => transactions.map { |t| { "appends" => t.to_a } } }
      request(:post, "/v1/transactions/batch", body: body)
    rescue Timetrail::Error => e
      raise unless e.body.key?("results")

      e.body
    end

    # Restores the state at +to_revision+ or +to_time+ by appending a new $put (or $delete).
    # Answers like #append.
    def revert(stream, to_revision: nil, to_time: nil, expected_revision: nil, actor: nil,
               reason: nil)
      body = { "to_revision" => to_revision, "to_time" => opt_time(to_time),
               "expected_revision" => expected_revision, "actor" => actor,
               "reason" => reason }.compact
      request(:post, "/v1/entities/#{Client.segment(stream)}/revert", body: body)
    end

    # -- reading --------------------------------------------------------------------------

    # One page of a stream: {"events" => [...], "next" => REV or nil}. Pass "next" as
    # +from_revision+ for the following page. NotFound for a stream without events.
    def read_stream(stream, from_revision: nil, backward: false, limit: nil, min_position: nil,
                    timeout_ms: nil)
      get("/v1/streams/#{Client.segment(stream)}",
          { from: from_revision, direction: backward ? "backward" : nil, limit: limit },
          min_position, timeout_ms)
    end

    # Every event of a stream from +from_revision+ on, page after page (an Enumerator without
    # a block).
    def each_event(stream, from_revision: nil, backward: false, page_size: 100,
                   min_position: nil)
      unless block_given?
        return enum_for(:each_event, stream, from_revision: from_revision, backward: backward,
                                             page_size: page_size, min_position: min_position)
      end

      cursor = from_revision
      loop do
        page = read_stream(stream, from_revision: cursor, backward: backward, limit: page_size,
                                   min_position: min_position)
        page["events"].each { |e| yield e }
        cursor = page["next"]
        break if cursor.nil?
      end
    end

    # {"stream", "exists", "revision", "position", "deleted"}, also for a stream without
    # events (exists is false).
    def stream_info(stream, min_position: nil, timeout_ms: nil)
      get("/v1/streams/#{Client.segment(stream)}/info", {}, min_position, timeout_ms)
    end

    # One page of the global log: {"events", "next", "head"}. With filters a page may hold
    # fewer than +limit+ events while "next" <= "head": keep reading.
    def read_log(from_position: nil, limit: nil, stream_prefix: nil, types: nil,
                 min_position: nil, timeout_ms: nil)
      get("/v1/log", { from: from_position, limit: limit, stream_prefix: stream_prefix,
                       types: types }, min_position, timeout_ms)
    end

    # The global log from +from_position+ up to the head as it was when each page was read.
    def each_log_event(from_position: 1, stream_prefix: nil, types: nil, page_size: 1000,
                       min_position: nil, &block)
      unless block
        return enum_for(:each_log_event, from_position: from_position,
                                         stream_prefix: stream_prefix, types: types,
                                         page_size: page_size, min_position: min_position)
      end

      position = from_position
      loop do
        page = read_log(from_position: position, limit: page_size, stream_prefix: stream_prefix,
                        types: types, min_position: min_position)
        page["events"].each(&block)
        position = page["next"]
        break if position > page["head"]
      end
    end

    # The event with this id (NotFound if none).
    def event(id, min_position: nil, timeout_ms: nil)
      get("/v1/events/#{Client.segment(id)}", {}, min_position, timeout_ms)
    end

    # -- temporal queries -----------------------------------------------------------------

    # The entity's state: the latest, or at one of +at_revision+, +at_position+, +as_of+
    # (system time) or +valid_at+ (valid time, as known at +known_at+). Returns {"stream",
    # "exists", "state", "revision", "position", "recorded_at", "valid_from", "metadata"}.
    def entity(stream, at_revision: nil, at_position: nil, as_of: nil, valid_at: nil,
               known_at: nil, min_position: nil, timeout_ms: nil)
      get("/v1/entities/#{Client.segment(stream)}",
          { at_revision: at_revision, at_position: at_position, as_of: opt_time(as_of),
            valid_at: opt_time(valid_at), known_at: opt_time(known_at) },
          min_position, timeout_ms)
    end

    # One page of the intervals during which the value at JSON pointer +path+ stayed the same:
    # {"stream", "path", "intervals" => [{"value", "exists", "from", "to", "metadata"}],
    # "cursor"}. Pass "cursor" back for the next page (nil at the end).
    def history(stream, path, valid_time: false, known_at: nil, limit: nil, cursor: nil,
                min_position: nil, timeout_ms: nil)
      get("/v1/entities/#{Client.segment(stream)}/history",
          { path: path, valid_time: valid_time ? true : nil, known_at: opt_time(known_at),
            limit: limit, cursor: cursor }, min_position, timeout_ms)
    end

    # Every interval of #history, following the cursor.
    def each_history_interval(stream, path, valid_time: false, known_at: nil, page_size: 1000,
                              min_position: nil, &block)
      unless block
        return enum_for(:each_history_interval, stream, path, valid_time: valid_time,
                                                          known_at: known_at, page_size: page_size,
                                                          min_position: min_position)
      end

      cursor = nil
      loop do
        page = history(stream, path, valid_time: valid_time, known_at: known_at,
                                     limit: page_size, cursor: cursor, min_position: min_position)
        page["intervals"].each(&block)
        cursor = page["cursor"]
        break if cursor.nil?
      end
    end

    # The states at two points (+from_revision+ or +from_time+, required; +to_revision+ or
    # +to_time+, default now) and the JSON Patch between them: {"stream", "from", "to",
    # "patch"}. With events: true also a page of the events in between and a "cursor".
    def diff(stream, from_revision: nil, from_time: nil, to_revision: nil, to_time: nil,
             events: false, limit: nil, cursor: nil, min_position: nil, timeout_ms: nil)
      if from_revision.nil? && from_time.nil?
        raise ArgumentError, "diff needs from_revision: or from_time:"
      end

      get("/v1/entities/#{Client.segment(stream)}/diff",
          { from: from_revision, from_time: opt_time(from_time), to: to_revision,
            to_time: opt_time(to_time), events: events ? true : nil, limit: limit,
            cursor: cursor }, min_position, timeout_ms)
    end

    # One page of events across streams, newest first: {"events", "cursor"}; pass "cursor"
    # back for the next page (nil at the end). +types+ is an Array of event types.
    def activity(actor: nil, stream_prefix: nil, types: nil, since: nil, until: nil, limit: nil,
                 cursor: nil, min_position: nil, timeout_ms: nil)
      till = binding.local_variable_get(:until) # a keyword Ruby cannot name directly
      get("/v1/activity",
          { actor: actor, stream_prefix: stream_prefix, type: types, since: opt_time(since),
            until: opt_time(till), limit: limit, cursor: cursor }, min_position, timeout_ms)
    end

    # Every event of #activity with these filters, newest first, following the cursor.
    def each_activity(page_size: 100, **filters, &block)
      return enum_for(:each_activity, page_size: page_size, **filters) unless block

      cursor = nil
      loop do
        page = activity(**filters, limit: page_size, cursor: cursor)
        page["events"].each(&block)
        cursor = page["cursor"]
        break if cursor.nil?
      end
    end

    # -- integrity, consumers, capture, health --------------------------------------------

    # The head of the integrity chain: {"position", "hash"}; keep it somewhere else.
    def integrity_head
      request(:get, "/v1/integrity")
    end

    # Recomputes the whole chain: {"ok", "events_checked", "first_bad_position", "message",
    # "head"} (admin scope when authentication is on).
    def verify
      request(:post, "/v1/integrity/verify")
    end

    # Stores +position+ as the last one the named consumer has processed.
    def ack(consumer, position)
      request(:post, "/v1/consumers/#{Client.segment(consumer)}/ack",
              body: { "position" => position })
    end

    # {"name", "position"} of a named consumer (NotFound if it never acknowledged).
    def consumer(name)
      request(:get, "/v1/consumers/#{Client.segment(name)}")
    end

    # The status of the capture the server runs (`serve --capture`; NotFound without one).
    def capture_status
      request(:get, "/v1/capture")
    end

    # {"status" => "ok", "position"}.
    def health
      request(:get, "/healthz")
    end

    # -- subscriptions --------------------------------------------------------------------

    # Follows the global log over server-sent events (GET /v1/subscribe). The returned
    # Subscription is Enumerable: #each yields events in position order, the stored ones from
    # +from_position+ (default 1, or after +consumer+'s acknowledged position), then live
    # ones as they commit. Leaving #each (break, #first(n)) and calling it again, or a dropped
    # connection, resumes right after the last event delivered (Last-Event-ID), so nothing is
    # skipped or repeated.
    def subscribe(from_position: nil, stream_prefix: nil, types: nil, consumer: nil,
                  reconnect: true, retry_delay: 0.2, max_retry_delay: 5.0, give_up_after: 60.0,
                  read_timeout: 60.0)
      q = Client.query_string(from: from_position, stream_prefix: stream_prefix, types: types,
                              consumer: consumer)
      Subscription.new(@uri, "/v1/subscribe#{q.empty? ? '' : "?#{q}"}",
                       headers: request_headers, ssl_context: @ssl_context,
                       reconnect: reconnect, retry_delay: retry_delay,
                       max_retry_delay: max_retry_delay, give_up_after: give_up_after,
                       read_timeout: read_timeout)
    end

    # Closes the kept-alive connections (they are reopened when needed).
    def close
      idle = @lock.synchronize { @idle.slice!(0..) }
      idle.each { |http, _| finish(http) }
    end

    # One percent-encoded path segment ("/" becomes "%2F").
    def self.segment(value)
      URI.encode_www_form_component(value.to_s).gsub("+", "%20")
    end

    def self.query_string(params)
      params.filter_map do |key, value|
        next if value.nil?

        value = value.join(",") if value.is_a?(Array)
        "#{segment(key)}=#{segment(value)}"
      end.join("&")
    end

    private

    def request_headers
      headers = { "Accept" => "application/json", "User-Agent" => "timetrail-ruby/#{VERSION}" }
      headers["Authorization"] = "Bearer #{@token}" if @token
      headers
    end

    def get(path, query, min_position, timeout_ms)
      query = query.merge(min_position: min_position, timeout_ms: timeout_ms)
      # The server may wait up to timeout_ms (default 5 s) for min_position: wait longer.
      wait = min_position ? (timeout_ms || 5000) / 1000.0 + 5 : 0
      request(:get, path, query: query, timeout: [@timeout, wait].max)
    end

    def opt_time(value)
      value.nil? ? nil : Timetrail.format_time(value)
    end

    def parse_json(text)
      text.nil? || text.empty? ? nil : JSON.parse(text)
    rescue JSON::ParserError
      nil
    end

    # Runs the block with a started Net::HTTP from the pool (or a new one) and puts it back
    # afterwards unless the request failed.
    def with_connection(timeout)
      http = checkout
      http.read_timeout = timeout
      http.write_timeout = timeout
      begin
        result = yield http
      rescue StandardError => e
        finish(http)
        raise if e.is_a?(Timetrail::Error)

        raise ConnectionFailed, "#{@base_url}: #{e.class}: #{e.message}"
      end
      @lock.synchronize { @idle.push([http, monotonic]) }
      result
    end

    def checkout
      loop do
        http, since = @lock.synchronize { @idle.pop }
        break if http.nil?
        return http if http.started? && monotonic - since < MAX_IDLE_SECONDS

        finish(http)
      end
      http = Net::HTTP.new(@uri.host, @uri.port)
      http.open_timeout = @timeout
      if @uri.scheme == "https"
        http.use_ssl = true
        apply_ssl_context(http) if @ssl_context
      end
      begin
        http.start
      rescue StandardError => e
        raise ConnectionFailed, "#{@base_url}: #{e.class}: #{e.message}"
      end
      http
    end

    # Net::HTTP takes the TLS settings one by one, not as an SSLContext.
    def apply_ssl_context(http)
      http.cert_store = @ssl_context.cert_store if @ssl_context.cert_store
      http.ca_file = @ssl_context.ca_file if @ssl_context.ca_file
      http.cert = @ssl_context.cert if @ssl_context.cert
      http.key = @ssl_context.key if @ssl_context.key
      http.verify_mode = @ssl_context.verify_mode if @ssl_context.verify_mode
    end

    def finish(http)
      http.finish if http.started?
    rescue StandardError
      nil
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
