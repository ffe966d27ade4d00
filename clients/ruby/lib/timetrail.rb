# frozen_string_literal: true

# A client for timetrail's HTTP API v1 (docs/http-api.md) and the who-and-why context for
# writes captured from PostgreSQL (Timetrail.with_context, Timetrail::ActiveRecord,
# Timetrail::Rails::ControllerContext). Standard library only; the integrations load
# ActiveRecord and ActionPack when they are used.
require "timetrail/version"
require "timetrail/errors"
require "timetrail/context"
require "timetrail/client"
require "timetrail/subscription"

module Timetrail
  autoload :ActiveRecord, "timetrail/active_record"
  autoload :Rails, "timetrail/rails"
end

require "timetrail/railtie" if defined?(::Rails::Railtie)
