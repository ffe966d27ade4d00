# frozen_string_literal: true

require "active_support/concern"
require "timetrail/context"

module Timetrail
  module Rails
    # Runs every action inside Timetrail.with_context, so the writes it makes (through
    # Timetrail::ActiveRecord) carry who and why, and the request's id:
    #
    #   class ApplicationController < ActionController::Base
    #     include Timetrail::Rails::ControllerContext
    #     timetrail_context { { actor: current_user&.email, reason: params[:reason] } }
    #   end
    #
    # The block runs in the controller (after the before_actions declared ahead of the
    # include, e.g. authentication) and returns a Hash; nil values are left out. request_id
    # is request.request_id unless the block gives one.
    module ControllerContext
      extend ActiveSupport::Concern

      included do
        class_attribute :timetrail_context_block, instance_writer: false
        around_action :with_timetrail_context
      end

      class_methods do
        # Sets the block that returns the context of a request (inherited by subclasses,
        # which may set their own).
        def timetrail_context(&block)
          raise ArgumentError, "timetrail_context needs a block returning a Hash" unless block

          self.timetrail_context_block = block
        end
      end

      private

      def with_timetrail_context(&action)
        values = timetrail_context_block ? instance_exec(&timetrail_context_block) : {}
        unless values.is_a?(Hash)
          raise TypeError, "the timetrail_context block of #{self.class} must return a Hash, " \
                           "not #{values.class}"
        end

        values = { request_id: request.request_id }.merge(values.transform_keys(&:to_sym).compact)
        Timetrail.with_context(**values, &action)
      end
    end
  end
end
