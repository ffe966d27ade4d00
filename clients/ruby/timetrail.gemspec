# frozen_string_literal: true

require_relative "lib/timetrail/version"

Gem::Specification.new do |spec|
  spec.name = "timetrail"
  spec.version = Timetrail::VERSION
  spec.authors = ["timetrail developers"]
  spec.summary = "Client for the timetrail HTTP API, and who/why context for captured " \
                 "PostgreSQL writes (ActiveRecord, Rails)"
  spec.description = "A Net::HTTP client for `timetrail serve` (appends, reads, temporal " \
                     "queries, resumable server-sent-event subscriptions) and " \
                     "Timetrail.with_context, which puts who and why on every write " \
                     "ActiveRecord sends to PostgreSQL, for `timetrail capture`."
  spec.required_ruby_version = ">= 3.0"
  spec.files = Dir["lib/**/*.rb"] + ["README.md", "timetrail.gemspec"]
  spec.require_paths = ["lib"]
  # No runtime dependencies: the client uses the standard library only. The integrations need
  # what the application already has: activerecord and pg (Timetrail::ActiveRecord),
  # actionpack (Timetrail::Rails::ControllerContext), 6.1 or later.
end
