"""SOAP endpoints of the fake org: partner ``login`` and the Metadata API calls used by
provisioning (``readMetadata``, ``createMetadata``, ``upsertMetadata``).

Responses follow the envelopes of Salesforce's SOAP and Metadata API guides.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any
from xml.etree import ElementTree as ET

from tests.salesforce.fake.org import FakeField, FakeOrg

__all__ = ["login_fault", "login_response", "metadata_response", "soap_credentials"]

_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_MD = "http://soap.sforce.com/2006/04/metadata"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_BAD_LOGIN = "Invalid username, password, security token; or user locked out."
_TYPES = {
    "Number": "double",
    "Percent": "percent",
    "Checkbox": "boolean",
    "Picklist": "picklist",
    "MultiselectPicklist": "multipicklist",
    "DateTime": "datetime",
    "Text": "string",
}


def _envelope(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENV}" xmlns="{_MD}" xmlns:xsi="{_XSI}">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def soap_credentials(body: str) -> tuple[str, str]:
    """(username, password+token) from a partner ``login`` request."""
    user = re.search(r"<(?:\w+:)?username>(.*?)</", body, re.S)
    password = re.search(r"<(?:\w+:)?password>(.*?)</", body, re.S)
    return (
        html.unescape(user[1]) if user else "",
        html.unescape(password[1]) if password else "",
    )


def login_response(session_id: str, instance_url: str, version: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENV}" xmlns="urn:partner.soap.sforce.com">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/00D000000000001</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{instance_url}/services/Soap/u/{version}/00D000000000001</serverUrl>"
        f"<sessionId>{session_id}</sessionId>"
        "<userId>005000000000001AAA</userId>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def login_fault() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENV}" xmlns:sf="urn:fault.partner.soap.sforce.com">'
        "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>"
        f"<faultstring>INVALID_LOGIN: {_BAD_LOGIN}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault" '
        f'xmlns:xsi="{_XSI}"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
        f"<sf:exceptionMessage>{_BAD_LOGIN}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def _children(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node if c.tag.rsplit("}", 1)[-1] == name]


def _text(node: ET.Element, name: str) -> str | None:
    found = _children(node, name)
    return found[0].text if found else None


def _save_result(full_name: str, error: tuple[str, str] | None, tag: str = "result") -> str:
    if error is None:
        return f"<{tag}><fullName>{full_name}</fullName><success>true</success></{tag}>"
    code, message = error
    return (
        f"<{tag}><errors><message>{html.escape(message)}</message><statusCode>{code}</statusCode>"
        f"</errors><fullName>{full_name}</fullName><success>false</success></{tag}>"
    )


#: Custom fields of Activity show on Task (and Event), as in Salesforce.
_ON = {"Activity": "Task"}


def _custom_field(node: ET.Element) -> tuple[str, FakeField]:
    full_name = _text(node, "fullName") or ""
    sobject, name = full_name.split(".", 1)
    sobject = _ON.get(sobject, sobject)
    kind = _TYPES.get(_text(node, "type") or "", "string")
    values = tuple(
        _text(v, "fullName") or ""
        for vs in _children(node, "valueSet")
        for d in _children(vs, "valueSetDefinition")
        for v in _children(d, "value")
    )
    restricted = any(_text(vs, "restricted") == "true" for vs in _children(node, "valueSet"))
    scale = int(_text(node, "scale") or 0)
    field = FakeField(name, kind, custom=True, picklist=values, restricted=restricted, scale=scale)
    return sobject, field


def _read(org: FakeOrg, op: ET.Element, state: Mapping[str, Any]) -> str:
    records = []
    for name_node in _children(op, "fullNames"):
        full_name = name_node.text or ""
        sobject, _, name = full_name.partition(".")
        exists = (
            org.field(_ON.get(sobject, sobject), name) is not None
            or full_name in state["hidden_fields"]
        )
        if exists:
            records.append(
                f'<records xsi:type="CustomField"><fullName>{full_name}</fullName></records>'
            )
        else:
            records.append('<records xsi:nil="true"/>')
    return f"<readMetadataResponse><result>{''.join(records)}</result></readMetadataResponse>"


def _create(org: FakeOrg, op: ET.Element, state: dict[str, Any]) -> str:
    results = []
    for node in _children(op, "metadata"):
        sobject, field = _custom_field(node)
        full_name = _text(node, "fullName") or ""
        if _text(node, "externalId") == "true":
            state.setdefault("external_ids", set()).add(full_name)
        error = state["create_errors"].get(full_name)
        if error is None and org.field(sobject, field.name) is not None:
            error = ("DUPLICATE_DEVELOPER_NAME", f"There is already a field named {field.name}.")
        if error is None:
            state["created"].append(full_name)
            org.add_field(sobject, field)
        results.append(_save_result(full_name, error))
    return f"<createMetadataResponse>{''.join(results)}</createMetadataResponse>"


def _upsert(org: FakeOrg, op: ET.Element, state: dict[str, Any]) -> str:
    del org
    results = []
    for node in _children(op, "metadata"):
        full_name = _text(node, "fullName") or ""
        fields = [_text(p, "field") or "" for p in _children(node, "fieldPermissions")]
        state["permission_sets"][full_name] = fields
        results.append(
            f"<result><created>true</created><fullName>{full_name}</fullName>"
            "<success>true</success></result>"
        )
    return f"<upsertMetadataResponse>{''.join(results)}</upsertMetadataResponse>"


_OPERATIONS: Mapping[str, Callable[[FakeOrg, ET.Element, dict[str, Any]], str]] = {
    "readMetadata": _read,
    "createMetadata": _create,
    "upsertMetadata": _upsert,
}


def metadata_response(org: FakeOrg, body: str, state: dict[str, Any]) -> tuple[int, str]:
    """Status and envelope answering one Metadata API request."""
    root = ET.fromstring(body)  # the request was built by our own client
    payload = next(iter(_children(root, "Body")[0]))
    operation = payload.tag.rsplit("}", 1)[-1]
    handler = _OPERATIONS.get(operation)
    if handler is None:
        fault = (
            "<soapenv:Fault><faultcode>sf:UNKNOWN</faultcode>"
            f"<faultstring>{operation}</faultstring></soapenv:Fault>"
        )
        return 500, _envelope(fault)
    state["operations"].append(operation)
    return 200, _envelope(handler(org, payload, state))
