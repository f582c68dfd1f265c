#pragma once
// The protocol core's access to a pipeline's stages (private to users).
#include <span>
#include <string>

#include "ambisql/pipeline.hpp"
#include "proto/result_builder.hpp"

namespace ambisql::detail {

struct pipeline_access {
    // References to one stage's parts, named as in the stage.
    struct stage_ref {
        pipeline::kind& kind_;
        std::string& sql_;
        owned_args& args_;
        statement& st_;
        results& res_;
        diagnostics& diag_;
    };
    static stage_ref view(pipeline::stage& s) noexcept { return {s.kind_, s.sql_, s.args_, s.st_, s.res_, s.diag_}; }
    static void clear_result(pipeline::stage& s) noexcept { result_builder::clear(s.res_); }
    // Appends an execute of `st` with `args` (copied).
    static void add_execute(pipeline& p, const statement& st, std::span<const sql_arg> args) {
        p.stages_[p.add(pipeline::kind::execute_statement, {}, args)].st_ = st;
    }
};

}  // namespace ambisql::detail
