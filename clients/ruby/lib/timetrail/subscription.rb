# frozen_string_literal: true

require "json"
require "openssl"
require "socket"

module Timetrail
  # The events of GET /v1/subscribe (made by Client#subscribe), resumed across dropped
  # connections. Enumerable: #each yields each event (a Hash) in position order.
  #
  # +position+ is the position of the last event delivered (nil before the first). Every new
  # connection sends "Last-Event-ID: position", so the server resumes right after it: leaving
  # #each (break, #first(n)) and calling it again continues where it stopped. #close, from any
  # thread, ends it for good; an #each blocked waiting for events then returns.
  #
  # It speaks HTTP/1.1 on a socket of its own (not Net::HTTP) so that #close can interrupt a
  # read from another thread and so that it reads events as they arrive, chunked or not.
  class Subscription
    include Enumerable

    # The server did not answer in time, or answered 503: try again after a delay.
    class Retry < StandardError; end

    attr_reader :position, :connections, :duplicates_skipped
    attr_accessor :reconnect, :retry_delay, :max_retry_delay, :give_up_after, :read_timeout

    def initialize(uri, path, headers:, ssl_context: nil, reconnect: true, retry_delay: 0.2,
                   max_retry_delay: 5.0, give_up_after: 60.0, read_timeout: 60.0)
      @host = uri.host
      @port = uri.port
      @https = uri.scheme == "https"
      @path = uri.path.chomp("/") + path
      @headers = headers.merge("Accept" => "text/event-stream")
      @ssl_context = ssl_context
      @reconnect = reconnect
      @retry_delay = retry_delay
      @max_retry_delay = max_retry_delay
      @give_up_after = give_up_after
      @read_timeout = read_timeout
      @position = nil
      @connections = 0 # connections opened, the first one included
      @duplicates_skipped = 0 # events sent again after a reconnect, not delivered twice
      @closed = false
      @lock = Mutex.new
      @socket = nil
    end

    def each
      return enum_for(:each) unless block_given?

      delay = @retry_delay
      down_since = nil
      until @closed
        begin
          connect
        rescue Timetrail::Error
          drop
          raise
        rescue StandardError => e
          drop
          return if @closed

          now = monotonic
          down_since ||= now
          if !@reconnect || (@give_up_after && now - down_since > @give_up_after)
            raise ConnectionFailed, "subscribe #{@path}: #{e.class}: #{e.message}"
          end

          sleep delay
          delay = [delay * 2, @max_retry_delay].min
          next
        end
        delay = @retry_delay
        down_since = nil
        begin
          read_events do |event|
            position = Integer(event["position"])
            if @position && position <= @position
              @duplicates_skipped += 1 # never deliver an event twice
              next
            end
            @position = position
            yield event
          end
        rescue SystemCallError, IOError, OpenSSL::SSL::SSLError, JSON::ParserError, Retry
          nil # the connection dropped: reconnect below
        ensure
          drop # also when the caller leaves the block (break, first(n), an exception)
        end
        return unless @reconnect
      end
    end

    # Ends the subscription; an #each waiting for events in another thread returns.
    def close
      @closed = true
      drop
    end

    def closed?
      @closed
    end

    private

    def connect
      socket = open_socket
      @lock.synchronize do
        if @closed
          socket.close
          raise IOError, "subscription closed"
        end
        @socket = socket
        @buffer = String.new(encoding: Encoding::BINARY)
      end
      @connections += 1
      headers = @headers.dup
      headers["Last-Event-ID"] = @position.to_s if @position
      head = +"GET #{@path} HTTP/1.1\r\nHost: #{@host}:#{@port}\r\nConnection: close\r\n"
      headers.each { |k, v| head << "#{k}: #{v}\r\n" }
      socket.write(head << "\r\n")
      status, @response_headers = read_head
      return if status == 200

      body = read_whole_body
      parsed = begin
        JSON.parse(body)
      rescue JSON::ParserError
        nil
      end
      raise Retry, "503 #{body}" if status == 503 && @reconnect # shutting down or full

      raise Timetrail.error_from_response(status, parsed)
    end

    def open_socket
      tcp = Socket.tcp(@host, @port, connect_timeout: @read_timeout)
      tcp.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      return tcp unless @https

      ctx = @ssl_context || OpenSSL::SSL::SSLContext.new.tap(&:set_params)
      ssl = OpenSSL::SSL::SSLSocket.new(tcp, ctx)
      ssl.hostname = @host
      ssl.sync_close = true
      ssl.connect
      ssl.post_connection_check(@host) if ctx.verify_mode != OpenSSL::SSL::VERIFY_NONE
      ssl
    end

    def drop
      socket = @lock.synchronize { @socket.tap { @socket = nil } }
      socket&.close
    rescue StandardError
      nil
    end

    # "HTTP/1.1 200 OK" and the headers (lower-case names).
    def read_head
      status_line = read_line
      status = status_line[/\AHTTP\/1\.[01] (\d{3})/, 1]
      raise IOError, "not an HTTP response: #{status_line.inspect}" unless status

      headers = {}
      while (line = read_line) != ""
        name, value = line.split(":", 2)
        headers[name.strip.downcase] = value.to_s.strip
      end
      [status.to_i, headers]
    end

    # The SSE stream: "data:" lines up to a blank line make one message; comments (":
    # keepalive") and other fields are skipped; only "event: event" messages are events.
    def read_events
      data = []
      kind = "message"
      lines = String.new(encoding: Encoding::BINARY)
      loop do
        piece = read_body_piece
        return if piece.nil? # the server ended the stream

        lines << piece
        while (newline = lines.index("\n"))
          line = lines.slice!(0..newline).chomp("\n").chomp("\r").force_encoding(Encoding::UTF_8)
          if line.empty?
            yield JSON.parse(data.join("\n")) if !data.empty? && kind == "event"
            data = []
            kind = "message"
            next
          end
          next if line.start_with?(":")

          field, value = line.split(":", 2)
          value = value.to_s.delete_prefix(" ")
          case field
          when "data" then data << value
          when "event" then kind = value
          end
        end
      end
    end

    # The next bytes of the body (decoding chunked transfer), or nil at its end.
    def read_body_piece
      return read_some unless @response_headers["transfer-encoding"].to_s.include?("chunked")

      size_line = read_line
      size = size_line.split(";", 2).first.to_i(16)
      if size.zero?
        loop { break if read_line.empty? } # trailers end with a blank line
        return nil
      end
      piece = read_exactly(size)
      read_line # the CRLF after the chunk
      piece
    end

    def read_whole_body
      if (length = @response_headers["content-length"])
        read_exactly(length.to_i)
      else
        body = +""
        while (piece = read_body_piece)
          body << piece
        end
        body
      end
    rescue IOError, SystemCallError
      body.to_s
    end

    def read_line
      fill until (newline = @buffer.index("\n"))
      @buffer.slice!(0..newline).chomp("\n").chomp("\r")
    end

    def read_exactly(count)
      fill while @buffer.bytesize < count
      @buffer.slice!(0, count)
    end

    def read_some
      fill if @buffer.empty?
      @buffer.slice!(0..)
    rescue EOFError
      nil
    end

    # Reads what the socket has into the buffer, waiting at most read_timeout seconds.
    def fill
      socket = @socket
      raise IOError, "subscription closed" if socket.nil?

      loop do
        chunk = socket.read_nonblock(65_536, exception: false)
        case chunk
        when :wait_readable
          raise Retry, "no data for #{@read_timeout} s" unless socket.wait_readable(@read_timeout)
        when :wait_writable
          raise Retry, "no data for #{@read_timeout} s" unless socket.wait_writable(@read_timeout)
        when nil
          raise EOFError, "the server closed the connection"
        else
          @buffer << chunk.b
          return
        end
      end
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
