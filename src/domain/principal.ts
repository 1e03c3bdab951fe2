/** Who is calling: set by authentication, read by every domain rule that scopes or authorizes. */
export interface Principal {
  /** OIDC `sub`, or the subject an API token was issued for (`org-token:<id>` for an org token). */
  subject: string;
  username?: string;
  email?: string;
  platformAdmin: boolean;
  via: 'jwt' | 'api-token';
  /**
   * Set for an org token (POST /orgs/:org/tokens): the one organization it acts in. Its
   * membership there is its only one, so membership-scoped queries scope it already; this
   * marks what it may not do besides (mint tokens, create workspaces).
   */
  organizationId?: string;
}
