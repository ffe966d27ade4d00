# frozen_string_literal: true

require "timetrail/context"

module Timetrail
  # Under Rails: annotates ActiveRecord's PostgreSQL statements once ActiveRecord loads.
  # Turn it off with `config.timetrail.annotate_active_record = false`.
  class Railtie < ::Rails::Railtie
    config.timetrail = ActiveSupport::OrderedOptions.new
    config.timetrail.annotate_active_record = true

    initializer "timetrail.active_record" do |app|
      next unless app.config.timetrail.annotate_active_record

      ActiveSupport.on_load(:active_record) { Timetrail::Railtie.install_if_postgresql }
    end

    # An application without the pg gem does not use PostgreSQL: nothing to annotate.
    def self.install_if_postgresql
      begin
        require "pg"
      rescue LoadError
        return
      end
      require "timetrail/active_record"
      Timetrail::ActiveRecord.install!
    end
  end
end
