# frozen_string_literal: true

# Runs every test of the Ruby client in one process (one server, one database):
#   tests/support/with_postgres.sh env TIMETRAIL_BIN=path/to/timetrail ruby clients/ruby/test/run.rb -v
Dir[File.join(__dir__, "*_test.rb")].sort.each { |file| require file }
