// Who may call what: every route of the router × every role gets 403 exactly when the role lacks
// the route's permission (as openapi.json's x-herald-permission says), and otherwise the route's
// success status; a token of another workspace never reaches acme's objects (404, or nothing of
// acme's in a list). And the OpenAPI document describes exactly the router's routes.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/server/openapi.h"
#include "tests/support/api_fixture.h"

namespace herald::testing {
namespace {

using security::Role;

std::string lowercase(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

Json openapi() {
  Json doc = Json::parse(server::openapi_document(), nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << "openapi.json does not parse";
  return doc;
}

std::string workflow_source(const std::string& id) {
  return "id: " + id + "\n"
         "steps:\n"
         "  - id: only\n"
         "    uses: set\n"
         "    with: { ok: true }\n";
}

// One request of the matrix: the path with real ids, the body, and the status a permitted caller
// gets.
struct Prepared {
  std::string path;
  std::string body;
  std::string content_type;
  int success = 200;
};

class ApiRolesTest : public ApiTest {
 protected:
  // Makes the objects a route's {params} name, fresh for each call (so DELETE and cancel find
  // something to act on), in `workspace`, with its admin token.
  Prepared prepare(const server::Route& route, const std::string& workspace) {
    const std::string& admin_token = token(Role::admin, workspace);
    Prepared p;
    p.path = route.pattern;
    int n = ++counter_;
    auto fill = [&](const std::string& param, const std::string& value) {
      auto at = p.path.find(param);
      if (at != std::string::npos) p.path.replace(at, param.size(), value);
      created_.insert(value);
    };
    const std::string key = route.method + " " + route.pattern;
    if (route.pattern.rfind("/api/v1/workflows/{id}", 0) == 0) {
      std::string id = workspace + "-wf-" + std::to_string(n);
      EXPECT_EQ(deploy(admin_token, workflow_source(id)).status, 201);
      fill("{id}", id);
    } else if (route.pattern.rfind("/api/v1/runs/{id}", 0) == 0) {
      if (!sleeper_deployed_[workspace]) {
        EXPECT_EQ(deploy(admin_token,
                         "id: sleeper\nsteps:\n  - id: nap\n    uses: wait\n    with: { for: 1h }\n")
                      .status,
                  201);
        sleeper_deployed_[workspace] = true;
      }
      std::string run = start_run("sleeper", Json::object(), workspace);
      fill("{id}", run);
    } else if (route.pattern == "/api/v1/secrets/{name}") {
      std::string name = lowercase(workspace) == "acme" ? "ACME_SECRET_" + std::to_string(n)
                                                        : "GLOBEX_SECRET_" + std::to_string(n);
      EXPECT_EQ(put_json("/api/v1/secrets/" + name, admin_token, {{"value", "v"}}).status, 204);
      fill("{name}", name);
    } else if (route.pattern == "/api/v1/tokens/{id}") {
      auto made = post_json("/api/v1/tokens", admin_token, {{"user", user_of(workspace, Role::viewer)}});
      EXPECT_EQ(made.status, 201) << made;
      fill("{id}", made.json.value("id", "missing"));
    } else if (route.pattern == "/api/v1/users/{id}") {
      std::string user = workspace + "-member-" + std::to_string(n);
      EXPECT_EQ(put_json("/api/v1/users/" + user, admin_token, {{"role", "viewer"}}).status, 200);
      fill("{id}", user);
    } else if (route.pattern.rfind("/api/v1/approval-policies/{name}", 0) == 0) {
      std::string name = "policy-" + std::to_string(n);
      EXPECT_EQ(call("PUT", "/api/v1/approval-policies/" + name, admin_token, policy_source(name, n),
                     "application/yaml")
                    .status,
                201);
      fill("{name}", name);
    } else if (route.pattern == "/api/v1/groups/{name}") {
      std::string name = "group-" + std::to_string(n);
      EXPECT_EQ(put_json("/api/v1/groups/" + name, admin_token, {{"members", {user_of(workspace, Role::viewer)}}}).status,
                200);
      fill("{name}", name);
    } else if (route.pattern == "/api/v1/delegations/{user}") {
      // Each role acts on its own delegation: nobody needs users.manage for themselves.
      std::string user = user_of(workspace, acting_role_);
      EXPECT_EQ(put_json("/api/v1/delegations/" + user, admin_token, {{"delegate", user_of(workspace, Role::viewer) == user
                                                                                       ? user_of(workspace, Role::editor)
                                                                                       : user_of(workspace, Role::viewer)}})
                    .status,
                200);
      fill("{user}", user);
    } else if (route.pattern.rfind("/api/v1/approvals/{id}", 0) == 0) {
      if (!approval_deployed_[workspace]) {
        // Everyone who may decide is an approver; a viewer submits.
        EXPECT_EQ(deploy(admin_token,
                         "id: asks\nsteps:\n  - id: ask\n    uses: approval\n    with:\n"
                         "      subject: { text: matrix }\n      submitter: " + user_of(workspace, Role::viewer) + "\n"
                         "      chain:\n        - { name: all, approvers: [role:admin, role:editor, role:approver] }\n")
                      .status,
                  201);
        approval_deployed_[workspace] = true;
      }
      std::string run = start_run("asks", Json::object(), workspace);
      std::string id;
      for (int i = 0; i < 500 && id.empty(); ++i) {
        auto listed = get("/api/v1/approvals?run=" + run, admin_token);
        if (listed.status == 200 && !listed.json["items"].empty()) id = listed.json["items"][0]["id"];
        if (id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      EXPECT_FALSE(id.empty()) << "no approval for run " << run;
      fill("{id}", id);
    } else if (route.pattern.find('{') != std::string::npos) {
      ADD_FAILURE() << "the matrix does not know how to fill " << key << "; add it";
    }

    if (key == "POST /api/v1/workflows" || key == "POST /api/v1/workflows/validate") {
      p.body = workflow_source(workspace + "-deployed-" + std::to_string(n));
      p.content_type = "application/yaml";
      p.success = key == "POST /api/v1/workflows" ? 201 : 200;
    } else if (key == "POST /api/v1/workflows/{id}/runs") {
      p.body = "{}";
      p.content_type = "application/json";
      p.success = 201;
    } else if (key == "POST /api/v1/events") {
      p.body = Json{{"name", "matrix.event"}}.dump();
      p.content_type = "application/json";
      p.success = 202;
    } else if (key == "PUT /api/v1/secrets/{name}") {
      p.body = Json{{"value", "changed"}}.dump();
      p.content_type = "application/json";
      p.success = 204;
    } else if (key == "POST /api/v1/tokens") {
      p.body = Json{{"user", user_of(workspace, Role::viewer)}}.dump();
      p.content_type = "application/json";
      p.success = 201;
    } else if (key == "PUT /api/v1/users/{id}") {
      p.body = Json{{"role", "editor"}}.dump();
      p.content_type = "application/json";
      p.success = 200;
    } else if (key == "PUT /api/v1/approval-policies/{name}") {
      p.body = policy_source(p.path.substr(p.path.rfind('/') + 1), n + 1000);
      p.content_type = "application/yaml";
      p.success = 201;
    } else if (key == "PUT /api/v1/groups/{name}") {
      p.body = Json{{"members", {user_of(workspace, Role::editor)}}}.dump();
      p.content_type = "application/json";
      p.success = 200;
    } else if (key == "PUT /api/v1/delegations/{user}") {
      std::string user = user_of(workspace, acting_role_);
      p.body = Json{{"delegate", user == user_of(workspace, Role::admin) ? user_of(workspace, Role::editor)
                                                                           : user_of(workspace, Role::admin)}}
                   .dump();
      p.content_type = "application/json";
      p.success = 200;
    } else if (key == "POST /api/v1/approvals/{id}/decisions") {
      p.body = Json{{"decision", "approve"}}.dump();
      p.content_type = "application/json";
      p.success = 201;
    } else if (key == "POST /api/v1/runs/{id}/cancel") {
      p.success = 202;
    } else if (key == "POST /api/v1/runs/{id}/retry") {
      p.success = 409;  // only a failed run can be retried; this one is waiting
    } else if (route.method == "DELETE") {
      p.success = 204;
    } else if (route.method == "GET" || key == "POST /api/v1/workflows/{id}/enable" ||
               key == "POST /api/v1/workflows/{id}/disable") {
      p.success = 200;
    } else {
      ADD_FAILURE() << "the matrix has no request for " << key << "; add it";
    }
    return p;
  }

  ApiReply send(const server::Route& route, const Prepared& p, const std::string& bearer) {
    return call(route.method, p.path, bearer, p.body, p.content_type);
  }

  // The API routes with their permission from openapi.json.
  std::vector<std::pair<server::Route, security::Permission>> api_routes() {
    Json doc = openapi();
    std::vector<std::pair<server::Route, security::Permission>> out;
    for (const auto& route : service_->router().routes()) {
      if (route.pattern.rfind("/api/v1/", 0) != 0 || route.pattern == "/api/v1/openapi.json") continue;
      const Json* operation = nullptr;
      if (doc["paths"].contains(route.pattern) && doc["paths"][route.pattern].contains(lowercase(route.method))) {
        operation = &doc["paths"][route.pattern][lowercase(route.method)];
      }
      if (operation == nullptr || !operation->contains("x-herald-permission")) {
        ADD_FAILURE() << route.method << " " << route.pattern << " has no x-herald-permission in openapi.json";
        continue;
      }
      auto permission = security::parse_permission((*operation)["x-herald-permission"].get<std::string>());
      EXPECT_TRUE(permission.ok()) << route.pattern;
      if (permission.ok()) out.emplace_back(route, *permission);
    }
    EXPECT_GE(out.size(), 25u);
    return out;
  }

  static std::string policy_source(const std::string& name, int n) {
    return "name: " + name + "\ndescription: matrix " + std::to_string(n) +
           "\nchain:\n  - { name: check, approvers: [role:approver] }\n";
  }

  Role acting_role_ = Role::admin;  // the role the matrix is calling with
  std::map<std::string, bool> approval_deployed_;
  int counter_ = 0;
  std::set<std::string> created_;
  std::map<std::string, bool> sleeper_deployed_;
};

TEST_F(ApiRolesTest, EveryRouteTimesEveryRole) {
  for (const auto& [route, permission] : api_routes()) {
    for (Role role : security::kAllRoles) {
      SCOPED_TRACE(route.method + " " + route.pattern + " as " + std::string(security::to_string(role)));
      acting_role_ = role;
      Prepared p = prepare(route, kAcme);
      auto reply = send(route, p, token(role));
      if (security::allows(role, permission)) {
        EXPECT_EQ(reply.status, p.success) << reply;
        if (reply.status >= 400) {
          EXPECT_TRUE(is_error(reply, reply.status));
        }
      } else {
        EXPECT_TRUE(is_error(reply, 403, "permission_denied"));
      }
    }
  }
}

TEST_F(ApiRolesTest, EveryRoleReadsMe) {
  // Written out, not derived from kPermissionTable: any member may ask who they are.
  for (Role role : security::kAllRoles) {
    SCOPED_TRACE(std::string(security::to_string(role)));
    auto me = get("/api/v1/me", token(role));
    ASSERT_EQ(me.status, 200) << me;
    EXPECT_EQ(me.json["role"], std::string(security::to_string(role)));
    EXPECT_EQ(me.json["user"], user_of(kAcme, role));
    EXPECT_EQ(me.json["workspace"], kAcme);
    const Json& permissions = me.json["permissions"];
    EXPECT_NE(std::find(permissions.begin(), permissions.end(), "me.read"), permissions.end()) << me;
  }
  // An influencer's permissions are their own offers and themselves, nothing of the workspace's.
  auto influencer = get("/api/v1/me", token(Role::influencer));
  EXPECT_EQ(influencer.json["permissions"], (Json{"offers.read_own", "offers.respond_own", "me.read"}));
}

TEST_F(ApiRolesTest, AnotherWorkspacesTokenNeverReachesAcmesObjects) {
  // Some of acme's objects that lists could show.
  ASSERT_EQ(deploy(admin(), workflow_source("acme-listed")).status, 201);
  std::string acme_run = start_run("acme-listed");
  put_secret("ACME_LISTED", "acme-secret-value");
  ASSERT_EQ(post_json("/api/v1/events", admin(), {{"name", "acme.only"}}).status, 202);
  std::vector<std::string> markers = {"acme-listed", acme_run, "ACME_LISTED", "acme-secret-value", "acme.only",
                                      "acme-admin", "acme-viewer"};
  for (const auto& [workspace, ids] : token_ids_) {
    if (workspace == kAcme) {
      for (const auto& [role, id] : ids) markers.push_back(id);
    }
  }

  for (const auto& [route, permission] : api_routes()) {
    const std::string key = route.method + " " + route.pattern;
    // Upserts by name act on the caller's own workspace: PUT /secrets/X sets globex's X, and so do
    // policies and groups. Nothing of acme's is read or changed, so there is no 404 to see.
    if (key == "PUT /api/v1/secrets/{name}" || key == "PUT /api/v1/approval-policies/{name}" ||
        key == "PUT /api/v1/groups/{name}") {
      continue;
    }
    for (Role role : security::kAllRoles) {
      SCOPED_TRACE(key + " as globex " + std::string(security::to_string(role)));
      Prepared p = prepare(route, kAcme);
      auto reply = send(route, p, token(role, kGlobex));
      if (!security::allows(role, permission)) {
        EXPECT_TRUE(is_error(reply, 403, "permission_denied"));
        continue;
      }
      if (key == "PUT /api/v1/users/{id}") {
        // Acme's member cannot be made globex's: globex would see their name and email.
        EXPECT_TRUE(is_error(reply, 409, "already_exists"));
      } else if (route.pattern.find('{') != std::string::npos) {
        EXPECT_TRUE(is_error(reply, 404, "not_found"));
      } else if (key == "POST /api/v1/tokens") {
        EXPECT_TRUE(is_error(reply, 404, "not_found"));  // acme's user is no member of globex
      } else if (route.method == "GET") {
        ASSERT_EQ(reply.status, 200) << reply;
        for (const auto& marker : markers) {
          EXPECT_EQ(reply.body.find(marker), std::string::npos) << marker << " in " << reply;
        }
        for (const auto& made : created_) {
          EXPECT_EQ(reply.body.find(made), std::string::npos) << made << " in " << reply;
        }
      } else {
        EXPECT_EQ(reply.status, p.success) << reply;  // acts on globex: deploy, validate, emit
      }
    }
  }
  // Acme's objects are as they were.
  auto workflows = get("/api/v1/workflows?limit=1000", admin());
  for (const auto& item : workflows.json["items"]) EXPECT_EQ(item["enabled"], true) << item.dump();
  auto runs = get("/api/v1/runs?state=cancelled", admin());
  EXPECT_TRUE(runs.json["items"].empty()) << runs;
  EXPECT_EQ(get("/api/v1/me", token(Role::viewer)).status, 200);
  // Globex's own lists hold only globex's objects: its events started nothing of acme's.
  auto globex_runs = get("/api/v1/runs", token(Role::admin, kGlobex));
  for (const auto& item : globex_runs.json["items"]) EXPECT_NE(item["workflow"], "acme-listed");
}

TEST_F(ApiRolesTest, OpenApiDocumentsExactlyTheRoutes) {
  Json doc = openapi();
  ASSERT_TRUE(doc.is_object());
  std::set<std::string> routes;
  for (const auto& route : service_->router().routes()) routes.insert(route.method + " " + route.pattern);
  std::set<std::string> documented;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"};
      if (!kMethods.count(method)) continue;  // parameters, summary, ...
      std::string upper = method;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(upper + " " + path);
      EXPECT_TRUE(operation.contains("responses")) << upper << " " << path;
    }
  }
  for (const auto& route : routes) EXPECT_TRUE(documented.count(route)) << route << " is not in openapi.json";
  for (const auto& entry : documented) EXPECT_TRUE(routes.count(entry)) << entry << " is documented but not a route";
  EXPECT_EQ(routes.size(), documented.size());

  // What every operation can answer whatever it does: 400 (a malformed request); on the
  // authenticated routes 401, 403, 429 (the per-token rate), 500 and 503 (the store busy or
  // unreachable); 413 wherever a body is taken.
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (!operation.is_object() || !operation.contains("responses")) continue;
      std::vector<std::string> statuses = {"400"};
      if (operation.contains("x-herald-permission")) {
        statuses.insert(statuses.end(), {"401", "403", "429", "500", "503"});
      }
      if (method == "post" || method == "put") statuses.push_back("413");
      for (const auto& status : statuses) {
        EXPECT_TRUE(operation["responses"].contains(status)) << method << " " << path << " does not document " << status;
      }
    }
  }

  // Every documented permission is one the policy knows; every API route but the document itself
  // names one.
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (!operation.is_object() || !operation.contains("x-herald-permission")) {
        bool public_route = path.rfind("/api/v1/", 0) != 0 || path == "/api/v1/openapi.json";
        EXPECT_TRUE(public_route || !operation.is_object() || !operation.contains("responses"))
            << method << " " << path << " has no x-herald-permission";
        continue;
      }
      EXPECT_TRUE(security::parse_permission(operation["x-herald-permission"].get<std::string>()).ok())
          << method << " " << path;
    }
  }
  // The served document is the embedded one.
  auto served = get("/api/v1/openapi.json", "");
  ASSERT_EQ(served.status, 200);
  EXPECT_EQ(served.json, doc);
}

}  // namespace
}  // namespace herald::testing
