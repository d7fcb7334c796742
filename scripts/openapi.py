#!/usr/bin/env python3
"""Writes crates/hubbub/openapi.json, the OpenAPI description of the REST API.

The document is data, kept next to the code it describes; a test checks that every
route the server answers is in it. Run: python3 scripts/openapi.py
"""
import json, pathlib

def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def obj(props, required=()):
    return {"type": "object", "properties": props, "required": list(required)}
S = {"type": "string"}; I = {"type": "integer"}; B = {"type": "boolean"}
def nullable(t): return {"anyOf": [t, {"type": "null"}]}
def ok(schema, desc="OK"): return {"200": {"description": desc, "content": {"application/json": {"schema": schema}}}}
NO = {"204": {"description": "Done"}}
ERR = {"default": {"description": "Error", "content": {"application/json": {"schema": ref("Error")}}}}
def body(schema): return {"required": True, "content": {"application/json": {"schema": schema}}}
def op(summary, responses, req=None, params=(), tag="", auth=True):
    o = {"summary": summary, "tags": [tag] if tag else [], "responses": {**responses, **ERR}}
    if req: o["requestBody"] = req
    if params: o["parameters"] = list(params)
    if not auth: o["security"] = []
    return o
def path_id(name="id"): return {"name": name, "in": "path", "required": True, "schema": S}
def q(name, schema, desc=""): return {"name": name, "in": "query", "required": False, "schema": schema, "description": desc}

schemas = {
  "Error": obj({"error": obj({"code": {"type": "string", "enum": ["unauthorized","forbidden","not_found","invalid","conflict","too_large","rate_limited","room_closed","room_not_open","room_full","banned","muted","internal"]},
                              "message": S, "field": nullable(S), "retry_after_ms": I}, ["code","message"])}, ["error"]),
  "User": obj({"id": S, "username": S, "display_name": nullable(S), "kind": {"type":"string","enum":["user","guest","bot"]},
               "avatar_url": S, "bio": S, "status_text": S, "is_admin": B,
               "status": {"type":"string","enum":["online","away","dnd","offline"]}, "last_seen_at": nullable(S)},
              ["id","username","kind","avatar_url","is_admin"]),
  "Session": obj({"user": ref("User"), "token": S}, ["user","token"]),
  "Room": obj({"id": S, "name": S, "topic": S, "kind": {"type":"string","enum":["public","private","dm"]},
               "has_password": B, "guests_allowed": B, "starts_at": nullable(S), "ends_at": nullable(S),
               "member_limit": nullable(I), "created_by": nullable(S), "created_at": S, "member_count": I,
               "last_seq": I, "pos": I, "joined": B, "unread_count": I, "mention_count": I, "last_read_seq": I,
               "role": {"type":"string","enum":["owner","admin","moderator","member"]}, "muted_until": nullable(S),
               "notification_level": {"type":"string","enum":["all","mentions","none"]}},
              ["id","name","kind","member_count","last_seq","pos"]),
  "Member": obj({"user": ref("User"), "role": S, "joined_at": S}, ["user","role","joined_at"]),
  "Reaction": obj({"emoji": S, "count": I, "me": B}),
  "Attachment": obj({"id": S, "name": S, "content_type": S, "size": I, "url": S, "thumbnail_url": nullable(S), "width": nullable(I), "height": nullable(I)}),
  "Message": obj({"id": S, "room_id": S, "seq": I, "pos": I, "author": ref("User"), "body": S, "html": S,
                  "created_at": S, "edited_at": nullable(S), "deleted": B, "pinned": B, "reply_to": nullable(S),
                  "thread_root": nullable(S), "reply_count": I, "reactions": {"type":"array","items": ref("Reaction")},
                  "attachments": {"type":"array","items": ref("Attachment")}, "mentions": {"type":"array","items": S},
                  "client_id": nullable(S)}, ["id","room_id","seq","pos","author","body","html","created_at","deleted"]),
  "MessagePage": obj({"messages": {"type":"array","items": ref("Message")}, "has_more": B}, ["messages","has_more"]),
}
T_AUTH, T_ME, T_ROOMS, T_MSG, T_OPS = "auth", "users", "rooms", "messages", "gateway"
paths = {
  "/auth/register": {"post": op("Create an account and a session (the first account is admin)", ok(ref("Session")),
        body(obj({"username": S, "password": S, "display_name": S}, ["username","password"])), tag=T_AUTH, auth=False)},
  "/auth/login": {"post": op("Sign in", ok(ref("Session")), body(obj({"username": S, "password": S}, ["username","password"])), tag=T_AUTH, auth=False)},
  "/auth/guest": {"post": op("Start a guest session (avatar: base64 data: URL)", ok(ref("Session")),
        body(obj({"name": S, "avatar": S}, ["name"])), tag=T_AUTH, auth=False)},
  "/auth/logout": {"post": op("End the session", NO, tag=T_AUTH)},
  "/me": {"get": op("Own profile", ok(ref("User")), tag=T_ME),
          "patch": op("Update own profile", ok(ref("User")), body(obj({"display_name": S, "bio": S, "status_text": S})), tag=T_ME)},
  "/me/avatar": {"put": op("Upload an avatar (raw image body or multipart field `file`)", ok(ref("User")),
          {"required": True, "content": {"image/*": {"schema": {"type":"string","format":"binary"}},
                                         "multipart/form-data": {"schema": obj({"file": {"type":"string","format":"binary"}}, ["file"])}}}, tag=T_ME),
          "delete": op("Reset to the default avatar", ok(ref("User")), tag=T_ME)},
  "/users": {"get": op("Search users", ok(obj({"users": {"type":"array","items": ref("User")}})), params=[q("q", S), q("limit", I)], tag=T_ME)},
  "/users/{id}": {"get": op("A user's profile", ok(ref("User")), params=[path_id()], tag=T_ME)},
  "/avatars/{id}": {"get": op("A user's avatar image (public, cacheable)", {"200": {"description": "The image", "content": {"image/*": {}}}},
          params=[path_id(), q("v", S, "version tag; a versioned URL is immutable")], tag=T_ME, auth=False)},
  "/rooms": {"get": op("Rooms of the caller (with counters) and public rooms they may join", ok(obj({"rooms": {"type":"array","items": ref("Room")}})), tag=T_ROOMS),
             "post": op("Create a room (accounts only)", ok(ref("Room")), body(obj({"name": S, "topic": S, "kind": {"type":"string","enum":["public","private"]},
                 "password": S, "guests_allowed": B, "starts_at": S, "ends_at": S, "member_limit": I}, ["name"])), tag=T_ROOMS)},
  "/rooms/{id}": {"get": op("A room", ok(ref("Room")), params=[path_id()], tag=T_ROOMS),
                  "patch": op("Update a room (room admin+)", ok(ref("Room")), body(obj({"name": S, "topic": S, "password": nullable(S), "guests_allowed": B,
                      "starts_at": nullable(S), "ends_at": nullable(S), "member_limit": nullable(I)})), params=[path_id()], tag=T_ROOMS),
                  "delete": op("Delete a room (owner)", NO, params=[path_id()], tag=T_ROOMS)},
  "/rooms/{id}/join": {"post": op("Join a room", ok(ref("Room")), {"required": False, "content": {"application/json": {"schema": obj({"password": S})}}}, params=[path_id()], tag=T_ROOMS)},
  "/rooms/{id}/leave": {"post": op("Leave a room", NO, params=[path_id()], tag=T_ROOMS)},
  "/rooms/{id}/members": {"get": op("Members with role and presence", ok(obj({"members": {"type":"array","items": ref("Member")}})),
        params=[path_id(), q("online", B), q("after", S, "last user id of the previous page"), q("limit", I)], tag=T_ROOMS)},
  "/rooms/{id}/invites": {"post": op("Invite a user (adds them as a member)", NO, body(obj({"user_id": S}, ["user_id"])), params=[path_id()], tag=T_ROOMS)},
  "/rooms/{id}/messages": {"get": op("History page, ascending by seq", ok(ref("MessagePage")),
        params=[path_id(), q("before_seq", I), q("after_seq", I), q("limit", I, "default 50, at most 200")], tag=T_MSG),
        "post": op("Send a message", ok(ref("Message")), body(obj({"body": S, "client_id": S, "reply_to": S, "thread_root": S,
             "attachment_ids": {"type":"array","items": S}}, ["body"])), params=[path_id()], tag=T_MSG)},
  "/rooms/{id}/read": {"post": op("Mark read up to seq", NO, body(obj({"seq": I}, ["seq"])), params=[path_id()], tag=T_MSG)},
  "/messages/{id}": {"get": op("A message", ok(ref("Message")), params=[path_id()], tag=T_MSG),
                     "patch": op("Edit own message", ok(ref("Message")), body(obj({"body": S}, ["body"])), params=[path_id()], tag=T_MSG),
                     "delete": op("Delete a message (author or moderator+)", NO, params=[path_id()], tag=T_MSG)},
  "/messages/{id}/reactions": {"get": op("Who reacted with what", ok(obj({"reactions": {"type":"array","items": obj({"emoji": S, "users": {"type":"array","items": ref("User")}})}})), params=[path_id()], tag=T_MSG)},
  "/messages/{id}/reactions/{emoji}": {
      "put": op("React (emoji, or :shortcode:)", ok(ref("Message")), params=[path_id(), path_id("emoji")], tag=T_MSG),
      "delete": op("Remove a reaction", ok(ref("Message")), params=[path_id(), path_id("emoji")], tag=T_MSG)},
  "/messages/{id}/pin": {"put": op("Pin (moderator+)", ok(ref("Message")), params=[path_id()], tag=T_MSG),
                         "delete": op("Unpin (moderator+)", ok(ref("Message")), params=[path_id()], tag=T_MSG)},
  "/messages/{id}/thread": {"get": op("A thread: the root first, then replies", ok(ref("MessagePage")),
        params=[path_id(), q("after_seq", I), q("limit", I)], tag=T_MSG)},
  "/rooms/{id}/pins": {"get": op("Pinned messages", ok(obj({"messages": {"type":"array","items": ref("Message")}})), params=[path_id()], tag=T_ROOMS)},
  "/rooms/{id}/notifications": {"put": op("The caller's notification level for a room", NO,
        body(obj({"level": {"type":"string","enum":["all","mentions","none"]}}, ["level"])), params=[path_id()], tag=T_ROOMS)},
  "/dms": {"post": op("Find or create the DM with these other participants (1 to 9)", ok(ref("Room")),
        body(obj({"user_ids": {"type":"array","items": S}}, ["user_ids"])), tag=T_ROOMS)},
  "/search": {"get": op("Full-text search over the caller's rooms, ranked", ok(obj({"results": {"type":"array","items": obj({"message": ref("Message"), "snippet": S})}})),
        params=[q("q", S), q("room_id", S), q("author_id", S), q("limit", I)], tag=T_MSG)},
  "/uploads": {"post": op("Upload an attachment (multipart field `file`, at most 25 MiB)", ok(ref("Attachment")),
        {"required": True, "content": {"multipart/form-data": {"schema": obj({"file": {"type":"string","format":"binary"}}, ["file"])}}}, tag=T_MSG)},
  "/attachments/{id}": {"get": op("An attachment's file (members of its room; unsent: the uploader)", {"200": {"description": "The file"}}, params=[path_id()], tag=T_MSG)},
  "/attachments/{id}/thumbnail": {"get": op("An image attachment's thumbnail", {"200": {"description": "The image"}}, params=[path_id()], tag=T_MSG)},
  "/emoji": {"get": op("Emoji data for pickers: [{e, n, s, g}]", ok({"type":"array"}), tag=T_MSG, auth=False)},
  "/ws": {"get": op("WebSocket gateway (see docs/PROTOCOL.md)", {"101": {"description": "Switching protocols"}}, params=[q("token", S)], tag=T_OPS)},
  "/openapi.json": {"get": op("This document", ok({"type": "object"}), tag=T_OPS, auth=False)},
}
doc = {
  "openapi": "3.1.0",
  "info": {"title": "Hubbub REST API", "version": "1", "description": "Self-hosted real-time group chat. Errors: {error:{code,message,field?,retry_after_ms?}}. Real-time events: the WebSocket gateway at /api/v1/ws."},
  "servers": [{"url": "/api/v1"}],
  "security": [{"bearer": []}, {"cookie": []}],
  "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "cookie": {"type": "apiKey", "in": "cookie", "name": "hubbub_session"}}},
  "paths": paths,
}
out = pathlib.Path(__file__).resolve().parent.parent / "crates/hubbub/openapi.json"
out.write_text(json.dumps(doc, indent=1) + "\n")
print(f"wrote {out}")
