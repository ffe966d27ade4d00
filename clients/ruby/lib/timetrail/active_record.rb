# frozen_string_literal: true

require "timetrail/context"

module Timetrail
  # Puts the active context (Timetrail.with_context) at the end of every write statement
  # ActiveRecord's PostgreSQL adapter sends, as the /*timetrail {...}*/ comment the source
  # database's statement trigger reads (sql/timetrail_context.sql): Model.create!, save!,
  # update_all, delete_all, insert_all, raw connection.execute, in or out of a transaction.
  #
  #   require "timetrail/active_record"
  #   Timetrail::ActiveRecord.install!   # once, at boot (the Railtie does it under Rails)
  #
  # The adapter's private methods differ between Rails versions; each supported shape is one
  # small module below, chosen by what the adapter class defines. Tested on Rails 6.1.
  module ActiveRecord
    # The adapter does not have the methods this integration wraps (another Rails version).
    class UnsupportedAdapter < StandardError; end

    # Where every statement passes. Rails 6.1 and 7.0: raw SQL goes through execute (and the
    # internal query), statements with binds through execute_and_clear.
    module Execute
      def execute(sql, *args, **kwargs, &block)
        super(Timetrail::Context.annotate(sql), *args, **kwargs, &block)
      end

      def query(sql, *args, **kwargs, &block)
        super(Timetrail::Context.annotate(sql), *args, **kwargs, &block)
      end
    end

    # Rails 7.1 and later: execute and the internal queries end in the private raw_execute.
    module RawExecute
      def raw_execute(sql, *args, **kwargs, &block)
        super(Timetrail::Context.annotate(sql), *args, **kwargs, &block)
      end
    end

    # exec_query, exec_insert, exec_update, exec_delete and insert_all end here. An annotated
    # statement is never prepared: its text changes with each context, so preparing it would
    # leave one prepared statement per request on the connection.
    module ExecuteAndClear
      def execute_and_clear(sql, name, binds, prepare: false, **kwargs, &block)
        annotated = Timetrail::Context.annotate(sql)
        prepare = false unless annotated.equal?(sql)
        super(annotated, name, binds, prepare: prepare, **kwargs, &block)
      end
    end

    module_function

    # Wraps the statement methods of +adapter+ (default: ActiveRecord's PostgreSQLAdapter).
    # Safe to call again. Raises UnsupportedAdapter, naming what is missing, when the adapter
    # does not have the methods expected of it.
    def install!(adapter = postgresql_adapter)
      return adapter if installed?(adapter)

      modules_for(adapter).each do |wrapper|
        # Each wrapper keeps the visibility the adapter gives the method it wraps.
        wrapper.instance_methods(false).concat(wrapper.private_instance_methods(false))
               .each do |name|
          wrapper.send(adapter.private_method_defined?(name) ? :private : :public, name)
        end
        adapter.prepend(wrapper)
      end
      adapter
    end

    # Whether install! has wrapped +adapter+.
    def installed?(adapter = postgresql_adapter)
      adapter.ancestors.include?(ExecuteAndClear)
    end

    # The modules that fit +adapter+'s methods, or UnsupportedAdapter.
    def modules_for(adapter)
      unless defines?(adapter, :execute_and_clear) &&
             adapter.instance_method(:execute_and_clear).parameters.include?(%i[key prepare])
        unsupported!(adapter, "no execute_and_clear(sql, name, binds, prepare:)")
      end

      if defines?(adapter, :raw_execute) # Rails 7.1+
        [RawExecute, ExecuteAndClear]
      elsif defines?(adapter, :execute) && defines?(adapter, :query) # Rails 6.1, 7.0
        [Execute, ExecuteAndClear]
      else
        unsupported!(adapter, "neither raw_execute(sql, name, ...) nor execute(sql, name) " \
                              "and query(sql, name)")
      end
    end

    def defines?(adapter, name)
      adapter.method_defined?(name) || adapter.private_method_defined?(name)
    end

    def unsupported!(adapter, what)
      version = defined?(::ActiveRecord::VERSION) ? ::ActiveRecord::VERSION::STRING : "unknown"
      raise UnsupportedAdapter,
            "timetrail cannot annotate the statements of #{adapter} (ActiveRecord #{version}): " \
            "it has #{what}. Supported: ActiveRecord 6.1 to 7.x; see " \
            "clients/ruby/lib/timetrail/active_record.rb to add this version"
    end

    def postgresql_adapter
      require "active_record"
      require "active_record/connection_adapters/postgresql_adapter"
      ::ActiveRecord::ConnectionAdapters::PostgreSQLAdapter
    rescue LoadError => e
      raise UnsupportedAdapter, "timetrail needs ActiveRecord's PostgreSQL adapter and the pg " \
                                "gem: #{e.message}"
    end
  end
end
