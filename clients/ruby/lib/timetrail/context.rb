# frozen_string_literal: true

require "json"

module Timetrail
  # Who and why for the writes a thread (or fiber) makes: Timetrail.with_context sets it, and
  # Context.annotate puts it at the end of each write statement as a /*timetrail {...}*/
  # comment, which the source database's statement trigger (sql/timetrail_context.sql) turns
  # into the transaction's context message for timetrail capture.
  module Context
    KEY = :timetrail_context
    COMMENT_KEY = :timetrail_context_comment

    # Statements that start with one of these words never write, so they get no comment (and
    # BEGIN/COMMIT/SAVEPOINT... must stay exactly as the driver sent them).
    READ_ONLY = /\A(?:SELECT|SHOW|SET|RESET|BEGIN|START|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i.freeze
    PREPARE_TRANSACTION = /\APREPARE\s+TRANSACTION\b/i.freeze
    # The comment the trigger reads: the last thing in the text, its JSON without any '/'.
    TRAILING_CONTEXT = %r{/\*timetrail [^/]*\*/[\s;]*\z}.freeze
    # Characters a driver could take for a parameter placeholder ('%s', '?', '$1') or that
    # could end the comment ('/'): written as JSON \u escapes, which mean the same string.
    ESCAPES = { "/" => "\\u002f", "%" => "\\u0025", "?" => "\\u003f", "$" => "\\u0024" }.freeze

    module_function

    # The active context as a Hash with String keys (empty when none).
    def current
      store[KEY] || {}
    end

    # Runs the block with +values+ merged over the active context and restores the previous
    # one afterwards, also when the block raises. Nil values are left out (the outer value,
    # if any, stays), so `reason: params[:reason]` without a reason adds nothing.
    def with(values)
      previous = store[KEY]
      previous_comment = store[COMMENT_KEY]
      merged = (previous || {}).merge(normalize(values).compact)
      # Encoded once here, not per statement; a value JSON cannot hold fails here, not in a write.
      comment = merged.empty? ? nil : comment(merged)
      store[KEY] = merged.empty? ? nil : merged.freeze
      store[COMMENT_KEY] = comment
      yield
    ensure
      store[KEY] = previous
      store[COMMENT_KEY] = previous_comment
    end

    # +sql+ with the context (default: the active one) appended as /*timetrail {...}*/ when it
    # is a statement that can write and does not end with such a comment already; otherwise
    # +sql+ itself. See the rules in sql/timetrail_context.sql.
    def annotate(sql, context = nil)
      text = context.nil? ? store[COMMENT_KEY] : (context.empty? ? nil : comment(context))
      return sql if text.nil? || !sql.is_a?(String)
      return sql unless write?(sql)
      return sql if sql.b.match?(TRAILING_CONTEXT)

      append(sql, text)
    end

    # The comment for a context Hash: JSON with '/', '%', '?' and '$' written as \u escapes.
    def comment(context)
      json = JSON.generate(normalize(context)).gsub(%r{[/%?$]}, ESCAPES)
      "/*timetrail #{json}*/"
    rescue JSON::GeneratorError, EncodingError => e
      raise ArgumentError, "timetrail context cannot be written as JSON: #{e.message}"
    end

    # Whether +sql+ may write: its first word, after blanks and comments, is not one of the
    # read-only or transaction-control words. An empty statement does not write.
    def write?(sql)
      rest = skip_blanks_and_comments(sql.b)
      return false if rest.nil? || rest.empty?

      !(rest.match?(READ_ONLY) || rest.match?(PREPARE_TRANSACTION))
    end

    # The text after leading whitespace, "-- line" comments and (nested) "/* block */"
    # comments; nil when a block comment never ends.
    def skip_blanks_and_comments(text)
      i = 0
      loop do
        i += 1 while i < text.bytesize && " \t\r\n\f".include?(text.getbyte(i).chr)
        if text[i, 2] == "--"
          newline = text.index("\n", i)
          return "" if newline.nil?

          i = newline + 1
        elsif text[i, 2] == "/*"
          i = skip_block_comment(text, i)
          return nil if i.nil?
        else
          return text[i..] || ""
        end
      end
    end

    # The index just after the block comment opening at +start+; PostgreSQL nests them.
    def skip_block_comment(text, start)
      depth = 0
      i = start
      while i < text.bytesize
        pair = text[i, 2]
        if pair == "/*"
          depth += 1
          i += 2
        elsif pair == "*/"
          depth -= 1
          i += 2
          return i if depth.zero?
        else
          i += 1
        end
      end
      nil
    end

    # Inserts the comment before any trailing blanks and semicolons, so the statement text
    # still ends with it. After a "--" comment on the last line it goes on a new line.
    def append(sql, comment)
      body = sql.sub(/[\s;]*\z/, "")
      tail = sql[body.length..]
      separator = body[/[^\n]*\z/].include?("--") ? "\n" : " "
      body + separator + comment + tail
    rescue Encoding::CompatibilityError, ArgumentError
      # SQL in another encoding than the comment's UTF-8: join the bytes and keep its encoding.
      (sql.b + " ".b + comment.b).force_encoding(sql.encoding)
    end

    def normalize(values)
      values.each_with_object({}) { |(k, v), h| h[k.to_s] = v }
    end

    # Per thread, or per fiber when Rails' isolation level says so (ActiveSupport 7+).
    def store
      if defined?(::ActiveSupport::IsolatedExecutionState)
        ::ActiveSupport::IsolatedExecutionState
      else
        Thread.current
      end
    end
  end

  # Runs the block with this context for every write it makes through an integration
  # (Timetrail::ActiveRecord) or Timetrail::Context.annotate. Nested calls merge their values
  # over the outer ones and restore them at the end; nil values are left out.
  #
  #   Timetrail.with_context(actor: user.email, reason: "refund #77") { order.update!(...) }
  def self.with_context(actor: nil, reason: nil, request_id: nil, correlation_id: nil, **more,
                        &block)
    raise ArgumentError, "Timetrail.with_context needs a block" unless block

    values = { actor: actor, reason: reason, request_id: request_id,
               correlation_id: correlation_id }.merge(more)
    Context.with(values, &block)
  end

  # The active context (a frozen Hash with String keys, empty when none).
  def self.current_context
    Context.current
  end
end
