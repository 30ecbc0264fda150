"""`spectral:oas` and `spectral:asyncapi`: Spectral's built-in rulesets, as Charter runs them.

The rules Spectral writes with its core functions are written here again, by name, with the same
severity and `recommended` flag, as rules of this engine. The rules Spectral implements with its own
JavaScript functions are listed in `NOT_COVERED` with what they check: enabling one reports it as
unsupported on every lint. docs/spectral.md is the table of both (`python -m contracts.lint.spectral`).
"""

from __future__ import annotations

from functools import cache

import msgspec

from contracts.lint.catalog import Severity
from contracts.lint.spectral.ruleset import SpectralRule, _rule, severity_of

_OPERATION = "$.paths[*][get,put,post,delete,options,head,patch,trace]"

OAS = f"""
contact-properties:
  description: Contact object must have "name", "url" and "email".
  recommended: false
  formats: [oas2, oas3]
  given: $.info.contact
  then:
    - {{field: name, function: truthy}}
    - {{field: url, function: truthy}}
    - {{field: email, function: truthy}}
duplicated-entry-in-enum:
  description: Enum values must not have duplicate entry.
  formats: [oas2, oas3]
  resolved: false
  given: "$..[?(@.enum)]"
  then: {{field: enum, function: schema, functionOptions: {{schema: {{type: array, uniqueItems: true}}}}}}
info-contact:
  description: Info object must have "contact" object.
  formats: [oas2, oas3]
  given: $.info
  then: {{field: contact, function: truthy}}
info-description:
  description: Info "description" must be present and non-empty string.
  formats: [oas2, oas3]
  given: $.info
  then: {{field: description, function: truthy}}
info-license:
  description: Info object must have "license" object.
  formats: [oas2, oas3]
  given: $.info
  then: {{field: license, function: truthy}}
license-url:
  description: License object must include "url".
  formats: [oas2, oas3]
  given: $.info.license
  then: {{field: url, function: truthy}}
no-eval-in-markdown:
  description: Markdown descriptions must not have "eval(".
  formats: [oas2, oas3]
  given: ["$..description", "$..title"]
  then: {{function: pattern, functionOptions: {{notMatch: "eval\\\\("}}}}
no-script-tags-in-markdown:
  description: Markdown descriptions must not have "<script>" tags.
  formats: [oas2, oas3]
  given: ["$..description", "$..title"]
  then: {{function: pattern, functionOptions: {{notMatch: "<script"}}}}
openapi-tags-alphabetical:
  description: OpenAPI object must have alphabetical "tags".
  recommended: false
  formats: [oas2, oas3]
  given: $
  then: {{field: tags, function: alphabetical, functionOptions: {{keyedBy: name}}}}
openapi-tags:
  description: OpenAPI object must have non-empty "tags" array.
  recommended: false
  formats: [oas2, oas3]
  resolved: false
  given: $
  then: {{field: tags, function: schema, functionOptions: {{schema: {{type: array, minItems: 1}}}}}}
operation-description:
  description: Operation "description" must be present and non-empty string.
  formats: [oas2, oas3]
  given: "{_OPERATION}"
  then: {{field: description, function: truthy}}
operation-operationId:
  description: Operation must have "operationId".
  formats: [oas2, oas3]
  given: "{_OPERATION}"
  then: {{field: operationId, function: truthy}}
operation-operationId-valid-in-url:
  description: operationId must not contain characters that are invalid when used in URL.
  formats: [oas2, oas3]
  given: "{_OPERATION}"
  then:
    field: operationId
    function: pattern
    functionOptions: {{match: "^[A-Za-z0-9-._~:/?#\\\\[\\\\]@!\\\\$&'()*+,;=]*$"}}
operation-singular-tag:
  description: Operation must not have more than a single tag.
  recommended: false
  formats: [oas2, oas3]
  given: "{_OPERATION}"
  then: {{field: tags, function: length, functionOptions: {{max: 1}}}}
operation-success-response:
  description: Operation must have at least one "2xx" or "3xx" response.
  formats: [oas2, oas3]
  resolved: false
  given: "{_OPERATION}"
  then:
    field: responses
    function: schema
    functionOptions:
      schema: {{type: object, not: {{propertyNames: {{not: {{pattern: "^[23]([0-9]{{2}}|XX)$"}}}}}}}}
operation-tags:
  description: Operation must have non-empty "tags" array.
  formats: [oas2, oas3]
  given: "{_OPERATION}"
  then: {{field: tags, function: truthy}}
path-declarations-must-exist:
  description: Path parameter declarations must not be empty, ex."/given/{{}}" is invalid.
  formats: [oas2, oas3]
  given: "$.paths[*]~"
  then: {{function: pattern, functionOptions: {{notMatch: "{{}}"}}}}
path-keys-no-trailing-slash:
  description: Path must not end with slash.
  formats: [oas2, oas3]
  given: "$.paths[*]~"
  then: {{function: pattern, functionOptions: {{notMatch: ".+\\\\/$"}}}}
path-not-include-query:
  description: Path must not include query string.
  formats: [oas2, oas3]
  given: "$.paths[*]~"
  then: {{function: pattern, functionOptions: {{notMatch: "\\\\?"}}}}
tag-description:
  description: Tag object must have "description".
  recommended: false
  formats: [oas2, oas3]
  given: "$.tags[*]"
  then: {{field: description, function: truthy}}
operation-operationId-unique:
  description: Every operation must have unique "operationId".
  severity: error
  formats: [oas2, oas3]
  given: $
  then: {{function: "charter:uniqueOperationIds"}}
oas2-schema:
  description: The document is valid OpenAPI 2.0 (Charter's validation).
  severity: error
  formats: [oas2]
  given: $
  then: {{function: "charter:documentValid"}}
oas3-schema:
  description: The document is valid OpenAPI 3.x (Charter's validation).
  severity: error
  formats: [oas3]
  given: $
  then: {{function: "charter:documentValid"}}
typed-enum:
  description: Enum values must respect the specified type.
  formats: [oas2, oas3]
  given: "$..[?(@.enum && @.type)]"
  then: {{function: typedEnum}}
array-items:
  description: Schemas of type array must have a sibling "items" field.
  severity: error
  formats: [oas3_1]
  given: "$..[?(@.type == 'array')]"
  then: {{field: items, function: truthy}}
oas2-api-host:
  description: OpenAPI "host" must be present and non-empty string.
  formats: [oas2]
  given: $
  then: {{field: host, function: truthy}}
oas2-api-schemes:
  description: OpenAPI host "schemes" must be present and non-empty array.
  formats: [oas2]
  resolved: false
  given: $
  then:
    field: schemes
    function: schema
    functionOptions: {{schema: {{type: array, minItems: 1, items: {{type: string}}}}}}
oas2-host-not-example:
  description: Host URL must not point at example.com.
  recommended: false
  formats: [oas2]
  given: $.host
  then: {{function: pattern, functionOptions: {{notMatch: "example\\\\.com"}}}}
oas2-host-trailing-slash:
  description: Server URL must not have trailing slash.
  formats: [oas2]
  given: $.host
  then: {{function: pattern, functionOptions: {{notMatch: "/$"}}}}
oas2-parameter-description:
  description: Parameter objects must have "description".
  recommended: false
  formats: [oas2]
  given: ["$.parameters[*]", "$.paths[*].parameters[*]", "{_OPERATION}.parameters[*]"]
  then: {{field: description, function: truthy}}
oas2-anyOf:
  description: OpenAPI v2 does not support "anyOf"; it was added in OpenAPI v3.
  formats: [oas2]
  resolved: false
  given: "$..anyOf"
  then: {{function: undefined}}
oas2-oneOf:
  description: OpenAPI v2 does not support "oneOf"; it was added in OpenAPI v3.
  formats: [oas2]
  resolved: false
  given: "$..oneOf"
  then: {{function: undefined}}
oas2-unused-definition:
  description: Potentially unused definition has been detected.
  formats: [oas2]
  resolved: false
  given: $.definitions
  then:
    function: unreferencedReusableObject
    functionOptions: {{reusableObjectsLocation: "#/definitions"}}
oas3-api-servers:
  description: OpenAPI "servers" must be present and non-empty array.
  formats: [oas3]
  resolved: false
  given: $
  then:
    field: servers
    function: schema
    functionOptions: {{schema: {{type: array, minItems: 1, items: {{type: object}}}}}}
oas3-examples-value-or-externalValue:
  description: Examples must have either "value" or "externalValue" field.
  formats: [oas3]
  given:
    - "$.components.examples[*]"
    - "$.paths[*][*]..content[*].examples[*]"
    - "$.paths[*][*]..parameters[*].examples[*]"
    - "$.components.parameters[*].examples[*]"
    - "$.paths[*][*]..headers[*].examples[*]"
    - "$.components.headers[*].examples[*]"
  then: {{function: xor, functionOptions: {{properties: [externalValue, value]}}}}
oas3-parameter-description:
  description: Parameter objects must have "description".
  recommended: false
  formats: [oas3]
  given: ["$.components.parameters[*]", "$.paths[*].parameters[*]", "{_OPERATION}.parameters[*]"]
  then: {{field: description, function: truthy}}
oas3-server-not-example.com:
  description: Server URL must not point at example.com.
  recommended: false
  formats: [oas3]
  given: "$.servers[*].url"
  then: {{function: pattern, functionOptions: {{notMatch: "example\\\\.com"}}}}
oas3-server-trailing-slash:
  description: Server URL must not have trailing slash.
  formats: [oas3]
  given: "$.servers[*].url"
  then: {{function: pattern, functionOptions: {{notMatch: "./$"}}}}
oas3-callbacks-in-callbacks:
  description: Callbacks must not be defined within callbacks.
  formats: [oas3]
  given: "{_OPERATION}.callbacks[*][*][*]"
  then: {{field: callbacks, function: undefined}}
oas3-license-allowed-fields:
  description: License object must not have both "identifier" and "url".
  severity: error
  formats: [oas3_1]
  resolved: false
  given: $.info.license
  then: {{function: schema, functionOptions: {{schema: {{not: {{required: [identifier, url]}}}}}}}}
oas3-unused-component:
  description: Potentially unused component has been detected.
  formats: [oas3]
  resolved: false
  given: $.components
  then:
""" + "".join(
    f"    - {{field: {kind}, function: unreferencedReusableObject,"
    f" functionOptions: {{reusableObjectsLocation: '#/components/{kind}'}}}}\n"
    for kind in (
        "schemas",
        "responses",
        "parameters",
        "examples",
        "requestBodies",
        "headers",
        "links",
        "callbacks",
    )
)

ASYNCAPI = """
asyncapi-channel-no-empty-parameter:
  description: Channel path must not have empty parameter substitution pattern.
  formats: [asyncapi2]
  given: "$.channels[*]~"
  then: {function: pattern, functionOptions: {notMatch: "{}"}}
asyncapi-channel-no-query-nor-fragment:
  description: Channel path must not include query ("?") or fragment ("#") delimiter.
  formats: [asyncapi2]
  given: "$.channels[*]~"
  then: {function: pattern, functionOptions: {notMatch: "[\\\\?#]"}}
asyncapi-channel-no-trailing-slash:
  description: Channel path must not end with slash.
  formats: [asyncapi2]
  given: "$.channels[*]~"
  then: {function: pattern, functionOptions: {notMatch: ".+\\\\/$"}}
asyncapi-headers-schema-type-object:
  description: Headers schema type must be "object".
  severity: error
  formats: [asyncapi2]
  given:
    - "$.components.messageTraits[*].headers"
    - "$.components.messages[*].headers"
    - "$.channels[*][publish,subscribe].message.headers"
  then:
    function: schema
    functionOptions: {schema: {type: object, required: [type], properties: {type: {enum: [object]}}}}
asyncapi-document-resolved:
  description: The document is valid AsyncAPI (Charter's validation, references resolved).
  severity: error
  formats: [asyncapi2, asyncapi3]
  given: $
  then: {function: "charter:documentValid"}
asyncapi-info-contact-properties:
  description: Contact object must have "name", "url" and "email".
  formats: [asyncapi2, asyncapi3]
  given: $.info.contact
  then:
    - {field: name, function: truthy}
    - {field: url, function: truthy}
    - {field: email, function: truthy}
asyncapi-info-contact:
  description: Info object must have "contact" object.
  formats: [asyncapi2, asyncapi3]
  given: $.info
  then: {field: contact, function: truthy}
asyncapi-info-description:
  description: Info "description" must be present and non-empty string.
  formats: [asyncapi2, asyncapi3]
  given: $.info
  then: {field: description, function: truthy}
asyncapi-info-license:
  description: Info object must have "license" object.
  formats: [asyncapi2, asyncapi3]
  given: $.info
  then: {field: license, function: truthy}
asyncapi-info-license-url:
  description: License object must include "url".
  formats: [asyncapi2, asyncapi3]
  given: $.info.license
  then: {field: url, function: truthy}
asyncapi-operation-description:
  description: Operation "description" must be present and non-empty string.
  formats: [asyncapi2]
  given: "$.channels[*][publish,subscribe]"
  then: {field: description, function: truthy}
asyncapi-operation-operationId:
  description: Operation must have "operationId".
  severity: error
  formats: [asyncapi2]
  given: "$.channels[*][publish,subscribe]"
  then: {field: operationId, function: truthy}
asyncapi-parameter-description:
  description: Parameter objects must have "description".
  recommended: false
  formats: [asyncapi2]
  given: ["$.components.parameters[*]", "$.channels[*].parameters[*]"]
  then: {field: description, function: truthy}
asyncapi-server-no-empty-variable:
  description: Server URL must not have empty variable substitution pattern.
  formats: [asyncapi2]
  given: "$.servers[*].url"
  then: {function: pattern, functionOptions: {notMatch: "{}"}}
asyncapi-server-no-trailing-slash:
  description: Server URL must not end with slash.
  formats: [asyncapi2]
  given: "$.servers[*].url"
  then: {function: pattern, functionOptions: {notMatch: "/$"}}
asyncapi-server-not-example-com:
  description: Server URL must not point at example.com.
  recommended: false
  formats: [asyncapi2]
  given: "$.servers[*].url"
  then: {function: pattern, functionOptions: {notMatch: "example\\\\.com"}}
asyncapi-servers:
  description: AsyncAPI object must have non-empty "servers" object.
  formats: [asyncapi2, asyncapi3]
  resolved: false
  given: $
  then: {field: servers, function: schema, functionOptions: {schema: {type: object, minProperties: 1}}}
asyncapi-tag-description:
  description: Tag object must have "description".
  recommended: false
  formats: [asyncapi2]
  given: "$.tags[*]"
  then: {field: description, function: truthy}
asyncapi-tags-alphabetical:
  description: AsyncAPI object must have alphabetical "tags".
  recommended: false
  formats: [asyncapi2]
  given: $
  then: {field: tags, function: alphabetical, functionOptions: {keyedBy: name}}
asyncapi-tags:
  description: AsyncAPI object must have non-empty "tags" array.
  formats: [asyncapi2]
  given: $
  then: {field: tags, function: truthy}
asyncapi-unused-components-schema:
  description: Potentially unused components schema has been detected.
  formats: [asyncapi2, asyncapi3]
  resolved: false
  given: $.components.schemas
  then:
    function: unreferencedReusableObject
    functionOptions: {reusableObjectsLocation: "#/components/schemas"}
asyncapi-unused-components-server:
  description: Potentially unused components server has been detected.
  recommended: false
  formats: [asyncapi2]
  resolved: false
  given: $.components.servers
  then:
    function: unreferencedReusableObject
    functionOptions: {reusableObjectsLocation: "#/components/servers"}
"""


class NotCovered(msgspec.Struct, frozen=True):
    name: str
    severity: str
    recommended: bool
    checks: str  # what Spectral's own JavaScript function checks


NOT_COVERED: dict[str, tuple[NotCovered, ...]] = {
    "spectral:oas": (
        NotCovered("operation-parameters", "warn", True, "operation parameters are unique and have one body"),
        NotCovered("operation-tag-defined", "warn", True, "operation tags are declared in the root `tags`"),
        NotCovered("openapi-tags-uniqueness", "error", True, "root tags have unique names"),
        NotCovered("path-params", "error", True, "path parameters are declared, used and unique"),
        NotCovered("oas2-discriminator", "error", True, "a discriminator names a required property"),
        NotCovered("oas2-operation-formData-consume-check", "warn", True, "formData goes with form consumes"),
        NotCovered(
            "oas2-operation-security-defined", "warn", True, "security requirements name defined schemes"
        ),
        NotCovered("oas2-valid-media-example", "warn", True, "examples are valid against their schema"),
        NotCovered("oas2-valid-schema-example", "warn", True, "schema examples are valid against the schema"),
        NotCovered(
            "oas3-operation-security-defined", "warn", True, "security requirements name defined schemes"
        ),
        NotCovered("oas3-server-variables", "warn", True, "server variables are declared and used"),
        NotCovered("oas3-valid-media-example", "warn", True, "examples are valid against their schema"),
        NotCovered("oas3-valid-schema-example", "warn", True, "schema examples are valid against the schema"),
    ),
    "spectral:asyncapi": (
        NotCovered("asyncapi-channel-parameters", "error", True, "channel parameters match the address"),
        NotCovered("asyncapi-channel-servers", "error", True, "channel servers are declared"),
        NotCovered(
            "asyncapi-document-unresolved", "error", True, "the document as written is valid AsyncAPI"
        ),
        NotCovered("asyncapi-latest-version", "info", True, "the latest AsyncAPI version is used"),
        NotCovered("asyncapi-message-examples", "error", True, "message examples match their schemas"),
        NotCovered("asyncapi-message-messageId-uniqueness", "error", True, "messageIds are unique"),
        NotCovered("asyncapi-operation-operationId-uniqueness", "error", True, "operationIds are unique"),
        NotCovered("asyncapi-operation-security", "error", True, "operation security names defined schemes"),
        NotCovered("asyncapi-payload", "error", True, "payloads are valid schemas of their format"),
        NotCovered("asyncapi-payload-default", "error", True, "payload defaults match their schemas"),
        NotCovered("asyncapi-payload-examples", "error", True, "payload examples match their schemas"),
        NotCovered(
            "asyncapi-payload-unsupported-schemaFormat", "info", True, "payload schema formats are known"
        ),
        NotCovered("asyncapi-schema", "error", True, "schemas are valid AsyncAPI schemas"),
        NotCovered("asyncapi-schema-default", "error", True, "schema defaults match their schemas"),
        NotCovered("asyncapi-schema-examples", "error", True, "schema examples match their schemas"),
        NotCovered("asyncapi-server-security", "error", True, "server security names defined schemes"),
        NotCovered("asyncapi-server-variables", "error", True, "server variables are declared and used"),
        NotCovered("asyncapi-tags-uniqueness", "error", True, "tags have unique names"),
    ),
}

SOURCES = {"spectral:oas": OAS, "spectral:asyncapi": ASYNCAPI}


def _formats_of(name: str) -> frozenset[str]:
    for prefix, formats in (("oas2-", {"oas2"}), ("oas3-", {"oas3"}), ("asyncapi-", {"asyncapi2"})):
        if name.startswith(prefix):
            return frozenset(formats)
    return frozenset({"oas2", "oas3"})


@cache
def builtin_rulesets() -> dict[str, dict[str, SpectralRule]]:
    """Each built-in Spectral ruleset by name: its rules at their declared severity (and `recommended`)."""
    out: dict[str, dict[str, SpectralRule]] = {}
    for name, source in SOURCES.items():
        rules: dict[str, SpectralRule] = {}
        for rule_name, body in msgspec.yaml.decode(source).items():
            rules[rule_name] = _rule(rule_name, body, frozenset(), {}, None, internal=True)
        for missing in NOT_COVERED[name]:
            rules[missing.name] = SpectralRule(
                missing.name,
                severity_of(missing.severity, missing.name) or Severity.WARNING,
                description=missing.checks,
                formats=_formats_of(missing.name),
                recommended=missing.recommended,
                unsupported=f"Spectral's `{missing.name}` runs its own JavaScript; Charter does not cover it",
            )
        out[name] = rules
    return out
