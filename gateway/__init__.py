"""The SecureCodingHub SCIM gateway: the server Okta provisions users and teams into."""
