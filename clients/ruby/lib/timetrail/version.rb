# frozen_string_literal: true

module Timetrail
  VERSION = "0.1.0"
end
