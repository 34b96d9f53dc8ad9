// The JSON Schema of the workflow format. It is the one description of which fields exist and
// what type each has: valijson checks files against it, `herald schema` prints it for editors,
// and docs/workflow-format.md explains it field by field. Checks a schema cannot express
// (references between steps, durations, cycles) live in internal/semantic_check.cc.
#include "engine/model/workflow.h"

namespace herald::model {

const std::string& workflow_schema_text() {
  static const std::string text = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "https://herald.dev/schemas/workflow.json",
  "title": "Herald workflow",
  "description": "A Herald workflow: what starts it, what it takes, and the steps it runs.",
  "type": "object",
  "required": ["id", "steps"],
  "additionalProperties": false,
  "properties": {
    "id": {
      "description": "Identifier, unique among deployed workflows: lower-case letters, digits, '-' and '_', starting with a letter or digit.",
      "type": "string",
      "pattern": "^[a-z0-9][a-z0-9_-]*$"
    },
    "name": {"description": "Human-readable name.", "type": "string"},
    "description": {"description": "What the workflow does, for people.", "type": "string"},
    "triggers": {
      "description": "What starts a run. Each item is a mapping with one key naming the trigger type.",
      "type": "array",
      "items": {"$ref": "#/definitions/trigger"}
    },
    "inputs": {
      "description": "Named, typed values a run starts with, read as inputs.<name>.",
      "type": "object",
      "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
      "additionalProperties": {"$ref": "#/definitions/input"}
    },
    "vars": {
      "description": "Values shared by all steps, read as vars.<name>; strings may hold {{ }} templates, rendered when the run starts.",
      "type": "object"
    },
    "steps": {
      "description": "The steps, run in file order unless needs says otherwise.",
      "type": "array",
      "minItems": 1,
      "items": {"$ref": "#/definitions/step"}
    },
    "on_error": {
      "description": "Steps run one after another, in file order, when the run fails; error is in their context.",
      "type": "array",
      "items": {"$ref": "#/definitions/on_error_step"}
    }
  },
  "definitions": {
    "duration": {
      "description": "A duration: <integer><unit> parts with unit ms, s, m, h or d, e.g. 500ms, 30s, 1h30m.",
      "type": "string"
    },
    "expression": {
      "description": "A Lua expression over the run context (inputs, vars, trigger, steps.<id>.output, run, now, env).",
      "type": "string"
    },
    "trigger": {
      "title": "trigger",
      "type": "object",
      "minProperties": 1,
      "maxProperties": 1,
      "additionalProperties": false,
      "properties": {
        "schedule": {
          "description": "Starts a run on a cron schedule or once at a time.",
          "type": "object",
          "properties": {
            "cron": {"description": "Five-field cron expression, e.g. \"0 9 * * MON-FRI\".", "type": "string"},
            "at": {"description": "One moment, ISO-8601.", "type": "string"},
            "timezone": {"description": "IANA time zone the schedule is read in, e.g. Europe/Paris; UTC when absent.", "type": "string"},
            "catch_up": {"description": "What happens to fire times missed while Herald was down: none, last (the default) or all; true means last, false none.", "enum": ["none", "last", "all", true, false]},
            "window": {"description": "With catch_up: last, how late a missed fire may still run (1h when absent).", "$ref": "#/definitions/duration"}
          }
        },
        "webhook": {
          "description": "Starts a run when an HTTP request arrives at /hooks/<path>.",
          "type": "object",
          "properties": {
            "path": {"description": "The URL path under /hooks/.", "type": "string"},
            "secret": {"description": "Shared secret the request is signed with (HMAC); may be a {{ secrets.X }} template.", "type": "string"},
            "respond": {"description": "What the caller gets back.", "type": ["string", "object"]}
          }
        },
        "event": {
          "description": "Starts a run when an event is emitted on Herald's event bus.",
          "type": "object",
          "properties": {
            "name": {"description": "Event name to listen for.", "type": "string"},
            "type": {"description": "Event type to listen for (alias of name).", "type": "string"},
            "filter": {"description": "A Lua expression over the event, or a mapping of fields that must match.", "type": ["string", "object"]}
          }
        },
        "poll": {
          "description": "Starts a run when polling a source finds something new.",
          "type": "object",
          "properties": {
            "every": {"$ref": "#/definitions/duration"}
          }
        },
        "manual": {
          "description": "Started by hand (herald run, the API, the admin UI).",
          "type": ["object", "null"]
        }
      }
    },
    "input": {
      "title": "input",
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "type": {
          "description": "The value's JSON type; string when absent.",
          "enum": ["string", "number", "integer", "boolean", "object", "array"]
        },
        "default": {"description": "Value used when the run does not give one; must have the input's type."},
        "required": {"description": "Whether a run must give this input; cannot be combined with default.", "type": "boolean"},
        "description": {"description": "What the input is for, for people.", "type": "string"}
      }
    },
    "retry": {
      "title": "retry policy",
      "description": "How a step is retried after an error marked retryable.",
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "attempts": {"description": "Total attempts including the first.", "type": "integer", "minimum": 1, "maximum": 100},
        "backoff": {"description": "How the delay grows between attempts.", "enum": ["fixed", "exponential"]},
        "initial": {"$ref": "#/definitions/duration"},
        "max": {"$ref": "#/definitions/duration"},
        "jitter": {"description": "Random +/- fraction applied to each delay.", "type": "number", "minimum": 0, "maximum": 1}
      }
    },
    "step": {
      "title": "step",
      "type": "object",
      "required": ["id", "uses"],
      "additionalProperties": false,
      "properties": {
        "id": {
          "description": "Identifier, unique in the workflow; steps.<id> reads its output, so letters, digits and '_', not starting with a digit.",
          "type": "string",
          "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
        },
        "name": {"description": "Human-readable name.", "type": "string"},
        "description": {"description": "What the step does, for people.", "type": "string"},
        "uses": {"description": "The step type: a built-in step or a plugin capability.", "type": "string", "minLength": 1},
        "with": {"description": "The step's input; strings may hold {{ }} templates, rendered when the step runs.", "type": "object"},
        "when": {"$ref": "#/definitions/expression"},
        "foreach": {"$ref": "#/definitions/expression"},
        "concurrency": {"description": "With foreach: how many items run at once.", "type": "integer", "minimum": 1, "maximum": 1000},
        "needs": {
          "description": "Step ids this step waits for. Absent: the step before it in the file; []: none.",
          "type": ["string", "array"],
          "items": {"type": "string"}
        },
        "retry": {"$ref": "#/definitions/retry"},
        "timeout": {"$ref": "#/definitions/duration"}
      }
    },
    "on_error_step": {
      "title": "on_error step",
      "description": "Like a step, but the id is optional (on_error_<n> when absent) and there is no needs: these run in file order.",
      "type": "object",
      "required": ["uses"],
      "additionalProperties": false,
      "properties": {
        "id": {
          "description": "Identifier, unique in the workflow; on_error_<n> (its position, from 0) when absent.",
          "type": "string",
          "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
        },
        "name": {"description": "Human-readable name.", "type": "string"},
        "description": {"description": "What the step does, for people.", "type": "string"},
        "uses": {"description": "The step type: a built-in step or a plugin capability.", "type": "string", "minLength": 1},
        "with": {"description": "The step's input; strings may hold {{ }} templates, rendered when the step runs.", "type": "object"},
        "when": {"$ref": "#/definitions/expression"},
        "foreach": {"$ref": "#/definitions/expression"},
        "concurrency": {"description": "With foreach: how many items run at once.", "type": "integer", "minimum": 1, "maximum": 1000},
        "retry": {"$ref": "#/definitions/retry"},
        "timeout": {"$ref": "#/definitions/duration"}
      }
    }
  }
}
)json";
  return text;
}

}  // namespace herald::model
