# frozen_string_literal: true

module Timetrail
  # A request failed. +status+ is the HTTP status (nil when the server could not be reached),
  # +code+ the API's "error" field ("not_found", "invalid_argument", ...), +message+ its
  # explanation and +body+ the whole error object (a Hash).
  class Error < StandardError
    attr_reader :status, :code, :body

    def initialize(status, code, message, body = {})
      super(status ? "#{status} #{code}: #{message}" : "#{code}: #{message}")
      @status = status
      @code = code
      @detail = message
      @body = body || {}
    end

    # The server's explanation, without the status and code in front.
    def server_message
      @detail
    end
  end

  # 400 bad_json / invalid_argument: a field or parameter breaks a rule.
  class InvalidArgument < Error; end
  # 401 unauthenticated: no valid API token.
  class Unauthenticated < Error; end
  # 403 forbidden: the token lacks the scope or the stream prefix.
  class Forbidden < Error; end
  # 404 not_found: no such stream, event, consumer or endpoint.
  class NotFound < Error; end
  # 409 duplicate_event: event ids partly overlap events already written.
  class DuplicateEvent < Error; end
  # 413 / 431 too_large.
  class TooLarge < Error; end
  # 503 unavailable: shutting down or too many connections; retry later.
  class Unavailable < Error; end
  # 504 timeout: a min_position wait ran out.
  class WaitTimeout < Error; end

  # 409 wrong_expected_revision: the stream is not at the revision the write expected. Read it
  # again and retry.
  class WrongExpectedRevision < Error
    # The stream that did not match.
    def stream
      body["stream"]
    end

    # Where the stream is (nil when it has no events).
    def actual_revision
      body["actual_revision"]
    end
  end

  # The server could not be reached or the connection broke (status is nil).
  class ConnectionFailed < Error
    def initialize(message)
      super(nil, "connection_failed", message)
    end
  end

  ERRORS_BY_CODE = {
    "bad_json" => InvalidArgument,
    "invalid_argument" => InvalidArgument,
    "unauthenticated" => Unauthenticated,
    "forbidden" => Forbidden,
    "not_found" => NotFound,
    "wrong_expected_revision" => WrongExpectedRevision,
    "duplicate_event" => DuplicateEvent,
    "too_large" => TooLarge,
    "unavailable" => Unavailable,
    "timeout" => WaitTimeout
  }.freeze

  # The exception for an error response; +body+ is its parsed JSON (or nil).
  def self.error_from_response(status, body)
    if body.is_a?(Hash) && body["error"].is_a?(String)
      code = body["error"]
      message = body["message"].to_s
    else
      code = "http_error"
      message = "HTTP #{status}"
      body = body.is_a?(Hash) ? body : {}
    end
    klass = ERRORS_BY_CODE[code] || (status == 404 ? NotFound : Error)
    klass.new(status, code, message, body)
  end
end
