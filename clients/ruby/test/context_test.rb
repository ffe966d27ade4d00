# frozen_string_literal: true

require_relative "test_helper"

# Timetrail.with_context and Context.annotate on their own: the rules of the comment.
class ContextTest < Minitest::Test
  C = Timetrail::Context

  def test_no_active_context_leaves_sql_alone
    sql = "UPDATE orders SET status = 'x'"
    assert_same sql, C.annotate(sql)
    assert_equal({}, Timetrail.current_context)
  end

  def test_writes_get_the_comment_at_the_end
    Timetrail.with_context(actor: "alice", reason: "refund", request_id: "r1") do
      assert_equal %(UPDATE t SET a = 1 /*timetrail {"actor":"alice","reason":"refund","request_id":"r1"}*/),
                   C.annotate("UPDATE t SET a = 1")
      %w[INSERT DELETE MERGE COPY TRUNCATE WITH].each do |word|
        assert_match %r{/\*timetrail \{"actor":"alice".*\}\*/\z}, C.annotate("#{word} x"), word
      end
      # lower case, leading blanks and comments (also nested block comments) before the verb
      assert C.annotate("  -- why\n /* a /* b */ c */ update t set a = 1").end_with?("*/")
      # anything that is not one of the read or transaction-control words counts as a write
      assert C.annotate("CALL do_things()").end_with?("*/")
      assert C.annotate("PREPARE p AS UPDATE t SET a = 1").end_with?("*/")
    end
  end

  def test_reads_and_transaction_control_are_left_alone
    Timetrail.with_context(actor: "alice") do
      ["SELECT 1", "select * from t for update", " /* x */ SHOW search_path", "SET x = 1",
       "RESET ALL", "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT a",
       "RELEASE SAVEPOINT a", "PREPARE TRANSACTION 'x'", "prepare\ttransaction 'x'", "",
       "   ", "-- only a comment", "/* unterminated"].each do |sql|
        assert_same sql, C.annotate(sql), sql.inspect
      end
    end
  end

  def test_semicolons_and_trailing_line_comments
    Timetrail.with_context(actor: "a") do
      assert_equal %(DELETE FROM t /*timetrail {"actor":"a"}*/;\n), C.annotate("DELETE FROM t;\n")
      # after a "--" comment on the last line the comment goes on a line of its own
      assert_equal %(DELETE FROM t -- cleanup\n/*timetrail {"actor":"a"}*/),
                   C.annotate("DELETE FROM t -- cleanup")
    end
  end

  def test_statement_already_carrying_a_context_is_left_alone
    sql = %(UPDATE t SET a = 1 /*timetrail {"actor":"bob"}*/ ;)
    Timetrail.with_context(actor: "alice") { assert_same sql, C.annotate(sql) }
  end

  def test_placeholder_and_comment_characters_are_escaped
    value = %(a/b 100% ?x $1 */ "q" 'single' \\ h\u00e9llo \u65e5\u672c)
    Timetrail.with_context(actor: value) do
      out = C.annotate("UPDATE t SET a = 1")
      json = out[%r{/\*timetrail (.*)\*/\z}, 1]
      refute_nil json
      %w[/ % ? $].each { |ch| refute_includes json, ch }
      assert_includes json, "\\u002f"
      assert_includes json, "\\u0025"
      assert_includes json, "\\u003f"
      assert_includes json, "\\u0024"
      assert_equal({ "actor" => value }, JSON.parse(json)) # the same string once decoded
    end
  end

  def test_nesting_merges_and_restores
    Timetrail.with_context(actor: "alice", reason: "outer") do
      Timetrail.with_context(reason: "inner", ticket: 7) do
        assert_equal({ "actor" => "alice", "reason" => "inner", "ticket" => 7 },
                     Timetrail.current_context)
        assert_includes C.annotate("DELETE FROM t"),
                        %({"actor":"alice","reason":"inner","ticket":7})
      end
      assert_equal({ "actor" => "alice", "reason" => "outer" }, Timetrail.current_context)
      assert_raises(RuntimeError) { Timetrail.with_context(actor: "x") { raise "boom" } }
      assert_equal({ "actor" => "alice", "reason" => "outer" }, Timetrail.current_context)
    end
    assert_equal({}, Timetrail.current_context)
    sql = "DELETE FROM t"
    assert_same sql, C.annotate(sql)
  end

  def test_nil_values_are_left_out
    Timetrail.with_context(actor: "alice", reason: nil) do
      assert_equal({ "actor" => "alice" }, Timetrail.current_context)
    end
    Timetrail.with_context(actor: nil) { assert_equal({}, Timetrail.current_context) }
  end

  def test_each_thread_has_its_own_context
    seen = Queue.new
    Timetrail.with_context(actor: "main") do
      Thread.new do
        seen << Timetrail.current_context
        Timetrail.with_context(actor: "other") { seen << C.annotate("DELETE FROM t") }
      end.join
      assert_equal({ "actor" => "main" }, Timetrail.current_context)
    end
    assert_equal({}, seen.pop)
    assert_includes seen.pop, %({"actor":"other"})
  end

  def test_bad_values_fail_at_with_context
    assert_raises(ArgumentError) { Timetrail.with_context(actor: "\xff".b) { flunk } }
    assert_raises(ArgumentError) { Timetrail.with_context(actor: "a") }
  end
end
