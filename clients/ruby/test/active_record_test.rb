# frozen_string_literal: true

require_relative "test_helper"

# ActiveRecord writes through the real PostgreSQL adapter, captured by the real server: each
# captured change must carry the context that was active when ActiveRecord sent it.
class ActiveRecordTest < Minitest::Test
  def setup
    ArEnv.setup
  end

  def metadata_of(order, count)
    TestEnv.wait_for_events(order.stream, count).map { |e| e["metadata"] }
  end

  def test_create_in_activerecords_own_transaction
    order = Timetrail.with_context(actor: "alice@example.com", reason: "new order",
                                   request_id: "req-create") do
      Order.create!(status: "new", amount: 10)
    end
    events = TestEnv.wait_for_events(order.stream, 1)
    assert_equal 1, events.size
    assert_equal "$put", events[0]["type"]
    md = events[0]["metadata"]
    assert_equal "alice@example.com", md["actor"]
    assert_equal "new order", md["reason"]
    assert_equal "req-create", md["request_id"]
    assert_equal "insert", md["source"]["operation"]
  end

  def test_save_update
    order = Order.create!(status: "new")
    Timetrail.with_context(actor: "bob", reason: "paid online") do
      order.status = "paid"
      order.save!
    end
    md = metadata_of(order, 2)
    refute md[0].key?("actor"), "the create ran without a context"
    assert_equal %w[bob paid\ online], [md[1]["actor"], md[1]["reason"]]
    assert_equal "update", md[1]["source"]["operation"]
  end

  def test_update_all_gives_every_row_the_actor
    tag = TestEnv.unique("bulk")
    orders = 3.times.map { Order.create!(status: "open", note: tag) }
    changed = Timetrail.with_context(actor: "carol", reason: "bulk close") do
      Order.where(note: tag).update_all(status: "closed")
    end
    assert_equal 3, changed
    orders.each do |order|
      events = TestEnv.wait_for_events(order.stream, 2)
      assert_equal "closed", events[1]["data"]["status"]
      assert_equal "carol", events[1]["metadata"]["actor"], order.stream
      assert_equal "bulk close", events[1]["metadata"]["reason"]
    end
  end

  def test_delete_all
    tag = TestEnv.unique("gone")
    orders = 2.times.map { Order.create!(status: "old", note: tag) }
    Timetrail.with_context(actor: "dave", reason: "cleanup") { Order.where(note: tag).delete_all }
    orders.each do |order|
      events = TestEnv.wait_for_events(order.stream, 2)
      assert_equal "$delete", events[1]["type"]
      assert_equal "dave", events[1]["metadata"]["actor"]
    end
  end

  def test_insert_all
    tag = TestEnv.unique("many")
    Timetrail.with_context(actor: "importer") do
      Order.insert_all([{ status: "a", note: tag }, { status: "b", note: tag }])
    end
    Order.where(note: tag).each do |order|
      assert_equal "importer", metadata_of(order, 1)[0]["actor"]
    end
  end

  def test_raw_execute_in_autocommit
    order = Order.create!(status: "new")
    connection = Order.connection
    refute connection.transaction_open?
    Timetrail.with_context(actor: "erin", reason: "console fix") do
      connection.execute("UPDATE orders SET status = 'fixed' WHERE id = #{order.id}")
    end
    md = metadata_of(order, 2)[1]
    assert_equal "erin", md["actor"]
    assert_equal "console fix", md["reason"]
  end

  def test_awkward_values_round_trip_exactly
    actor = %(o'brien/ops "admin")
    reason = %(a/b 100% ?x $1 $$ */ /* -- \\n \\ h\u00e9llo \u65e5\u672c \u{1F600} ) +
             %(/*timetrail {"actor":"mallory"}*/)
    order = Order.create!(status: "new")
    Timetrail.with_context(actor: actor, reason: reason, ticket: 42) do
      order.update!(status: "odd")
      Order.connection.execute("UPDATE orders SET note = 'raw' WHERE id = #{order.id}")
    end
    md = metadata_of(order, 3)
    [md[1], md[2]].each do |m|
      assert_equal actor, m["actor"]
      assert_equal reason, m["reason"]
      assert_equal 42, m["ticket"]
    end
  end

  def test_no_context_means_no_actor
    order = Order.create!(status: "new")
    order.update!(status: "later")
    Order.connection.execute("UPDATE orders SET note = 'x' WHERE id = #{order.id}")
    metadata_of(order, 3).each do |md|
      refute md.key?("actor"), md.inspect
      refute md.key?("reason"), md.inspect
      assert md.key?("source")
    end
  end

  def test_threads_keep_their_own_actor
    orders = 2.times.map { |i| Order.create!(status: "t#{i}") }
    turns = [Queue.new, Queue.new]
    threads = 2.times.map do |i|
      Thread.new do
        ActiveRecord::Base.connection_pool.with_connection do
          Timetrail.with_context(actor: "thread-#{i}") do
            5.times do |n|
              turns[i].pop # strict alternation: both contexts are active at once
              orders[i].update!(note: "n#{n}")
              turns[1 - i] << :go
            end
          end
        end
      end
    end
    turns[0] << :go
    threads.each(&:join)
    orders.each_with_index do |order, i|
      md = metadata_of(order, 6)
      assert_equal ["thread-#{i}"] * 5, md[1..].map { |m| m["actor"] }
    end
  end

  def test_annotated_statements_are_not_prepared
    order = Order.create!(status: "new")
    connection = Order.connection
    count = -> { connection.select_value("SELECT count(*) FROM pg_prepared_statements").to_i }
    sql = "UPDATE orders SET note = $1 WHERE id = $2"
    binds = lambda do |note|
      [ActiveRecord::Relation::QueryAttribute.new("note", note, ActiveRecord::Type::String.new),
       ActiveRecord::Relation::QueryAttribute.new("id", order.id, ActiveRecord::Type::Integer.new)]
    end
    before = count.call
    3.times do |i|
      Timetrail.with_context(actor: "prep-#{i}") do
        connection.exec_query(sql, "SQL", binds.call("p#{i}"), prepare: true)
      end
    end
    assert_equal before, count.call, "an annotated statement was prepared"
    # The same call without a context is prepared: the count above would have seen it.
    connection.exec_query(sql, "SQL", binds.call("plain"), prepare: true)
    assert_equal before + 1, count.call
    assert_equal %w[prep-0 prep-1 prep-2], metadata_of(order, 5)[1..3].map { |m| m["actor"] }
  end

  def test_set_context_wins_within_its_transaction
    order = Order.create!(status: "new")
    Timetrail.with_context(actor: "from-comment") do
      Order.transaction do
        Order.connection.exec_query("SELECT 1 FROM timetrail.set_context($1::jsonb)", "timetrail",
                                    [JSON.generate({ actor: "explicit", reason: "set_context" })])
        order.update!(status: "explicit")
      end
      order.update!(status: "comment") # a later transaction: the comment counts again
    end
    md = metadata_of(order, 3)
    assert_equal %w[explicit set_context], [md[1]["actor"], md[1]["reason"]]
    assert_equal "from-comment", md[2]["actor"]
  end

  def test_install_refuses_an_adapter_it_does_not_know
    adapter = Class.new do
      def execute(sql, name = nil); end
    end
    err = assert_raises(Timetrail::ActiveRecord::UnsupportedAdapter) do
      Timetrail::ActiveRecord.install!(adapter)
    end
    assert_match(/execute_and_clear/, err.message)
    assert Timetrail::ActiveRecord.installed?
  end
end
