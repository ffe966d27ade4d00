# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"

# The Railtie in a real (minimal) Rails application, booted in a process of its own so that
# loading Rails does not change the other tests: requiring "timetrail" after Rails installs
# the ActiveRecord integration once ActiveRecord loads, unless the application turns it off.
class RailtieTest < Minitest::Test
  APP = <<~RUBY
    require "rails"
    require "active_record/railtie"
    require "action_controller/railtie"
    require "timetrail"

    class App < Rails::Application
      config.root = Dir.pwd
      config.eager_load = false
      config.logger = Logger.new(nil)
      config.secret_key_base = "x" * 64
      config.timetrail.annotate_active_record = ENV["ANNOTATE"] == "1"
    end
    App.initialize!

    ActiveRecord::Base.connection # loads ActiveRecord::Base and its hooks
    Timetrail.with_context(actor: "railtie-app") do
      ActiveRecord::Base.connection.execute(
        "UPDATE orders SET note = 'from rails' WHERE id = \#{Integer(ENV.fetch('ORDER_ID'))}")
    end
    puts "installed=\#{Timetrail::ActiveRecord.installed?}"
  RUBY

  def setup
    ArEnv.setup
  end

  def run_app(order, annotate:)
    env = { "DATABASE_URL" => TestEnv.pg_url, "ORDER_ID" => order.id.to_s,
            "ANNOTATE" => annotate ? "1" : "0", "RAILS_ENV" => "production" }
    lib = File.expand_path("../lib", __dir__)
    out, err, status = Dir.mktmpdir do |dir|
      Open3.capture3(env, RbConfig.ruby, "-I", lib, "-e", APP, chdir: dir)
    end
    assert status.success?, "the Rails application failed:\n#{out}\n#{err}"
    out
  end

  def test_rails_application_annotates_activerecord_writes
    order = Order.create!(status: "new")
    assert_includes run_app(order, annotate: true), "installed=true"
    md = TestEnv.wait_for_events(order.stream, 2)[1]["metadata"]
    assert_equal "railtie-app", md["actor"]
  end

  def test_rails_application_can_turn_it_off
    order = Order.create!(status: "new")
    assert_includes run_app(order, annotate: false), "installed=false"
    md = TestEnv.wait_for_events(order.stream, 2)[1]["metadata"]
    refute md.key?("actor")
  end
end
