"""Custom resource: the chat page as sign-in and sign-out URL of the Cognito app client.

The gateway function needs the client's id and the chat page's URL names the API, which
invokes the function, so CloudFormation cannot create the client with that URL (a dependency
cycle). template.yaml inlines this file (scripts/gen_image_mappings.py) as the function behind
``ChatPageSignInUrls``, which runs once the API exists: it reads the client and writes it back
with ``Urls`` as its callback and logout URLs, every other setting kept (UpdateUserPoolClient
resets what it is not given). Standard library and the runtime's boto3 only.
"""

import json
import urllib.request
from typing import Any

KEEP = (
    "ClientName", "RefreshTokenValidity", "AccessTokenValidity", "IdTokenValidity",
    "TokenValidityUnits", "ReadAttributes", "WriteAttributes", "ExplicitAuthFlows",
    "SupportedIdentityProviders", "AllowedOAuthFlows", "AllowedOAuthScopes",
    "AllowedOAuthFlowsUserPoolClient", "AnalyticsConfiguration", "PreventUserExistenceErrors",
    "EnableTokenRevocation", "EnablePropagateAdditionalUserContextData", "AuthSessionValidity",
    "RefreshTokenRotation",
)  # fmt: skip


def set_urls(cognito: Any, pool: str, client: str, urls: list[str]) -> None:
    current = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)
    settings = {k: v for k, v in current["UserPoolClient"].items() if k in KEEP}
    cognito.update_user_pool_client(
        UserPoolId=pool, ClientId=client, CallbackURLs=urls, LogoutURLs=urls, **settings
    )


def handler(event: dict[str, Any], context: object, cognito: Any = None) -> dict[str, str]:
    props = event["ResourceProperties"]
    status, reason = "SUCCESS", "done"
    try:
        if event["RequestType"] != "Delete":  # the client goes with the stack
            if cognito is None:
                import boto3

                cognito = boto3.client("cognito-idp")
            set_urls(cognito, props["UserPoolId"], props["ClientId"], props["Urls"])
    except Exception as error:  # reported to CloudFormation, which rolls back
        status, reason = "FAILED", f"{type(error).__name__}: {error}"
    body = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": f"{props['ClientId']}-urls",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }
    request = urllib.request.Request(
        event["ResponseURL"],
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": ""},  # what the presigned S3 URL was signed with
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return body
