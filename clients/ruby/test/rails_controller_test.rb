# frozen_string_literal: true

require_relative "test_helper"
require "action_controller"
require "action_dispatch"
require "rack/test"

# A controller that includes Timetrail::Rails::ControllerContext, driven over Rack with the
# request id middleware Rails puts in front of every application.
class OrdersController < ActionController::Base
  include Timetrail::Rails::ControllerContext

  timetrail_context { { actor: request.headers["X-User"], reason: params[:reason] } }

  def update
    order = Order.find(params[:id])
    order.update!(status: params.require(:status))
    render json: { id: order.id, context: Timetrail.current_context }
  end
end

class RailsControllerTest < Minitest::Test
  include Rack::Test::Methods

  ROUTES = ActionDispatch::Routing::RouteSet.new.tap do |routes|
    routes.draw { patch "/orders/:id", to: OrdersController.action(:update) }
  end

  def app
    @app ||= Rack::Builder.new do
      use ActionDispatch::RequestId, header: "X-Request-Id"
      run ROUTES
    end.to_app
  end

  def setup
    ArEnv.setup
  end

  def test_action_writes_carry_actor_reason_and_request_id
    order = Order.create!(status: "new")
    header "X-User", "frank@example.com"
    header "X-Request-Id", "req-rails-42"
    patch "/orders/#{order.id}", status: "refunded", reason: "customer asked"
    assert_equal 200, last_response.status, last_response.body
    assert_equal "req-rails-42", last_response.headers["X-Request-Id"]

    events = TestEnv.wait_for_events(order.stream, 2)
    assert_equal "refunded", events[1]["data"]["status"]
    md = events[1]["metadata"]
    assert_equal "frank@example.com", md["actor"]
    assert_equal "customer asked", md["reason"]
    assert_equal "req-rails-42", md["request_id"]
    assert_equal({}, Timetrail.current_context, "the context ends with the request")
  end

  def test_generated_request_id_and_missing_values
    order = Order.create!(status: "new")
    header "X-User", "grace@example.com"
    patch "/orders/#{order.id}", status: "paid"
    assert_equal 200, last_response.status, last_response.body
    request_id = last_response.headers["X-Request-Id"]
    refute_empty request_id.to_s

    md = TestEnv.wait_for_events(order.stream, 2)[1]["metadata"]
    assert_equal "grace@example.com", md["actor"]
    assert_equal request_id, md["request_id"] # the id Rails made up and sent back
    refute md.key?("reason"), "no reason parameter, no reason"
  end

  def test_block_must_return_a_hash
    controller = Class.new(ActionController::Base) do
      include Timetrail::Rails::ControllerContext
      timetrail_context { "alice" }
      def show
        head :ok
      end
    end
    routes = ActionDispatch::Routing::RouteSet.new
    routes.draw { get "/bad", to: controller.action(:show) }
    err = assert_raises(TypeError) { Rack::MockRequest.new(routes).get("/bad") }
    assert_match(/must return a Hash/, err.message)
  end
end
