"""The SCIM 2.0 sub-application (RFC 7643/7644), shaped by what Okta and Entra send."""
