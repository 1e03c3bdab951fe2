/** Who is calling: set by authentication, read by every domain rule that scopes or authorizes. */
export interface Principal {
  /** OIDC `sub`, or the subject an API token was issued for. */
  subject: string;
  username?: string;
  email?: string;
  platformAdmin: boolean;
  via: 'jwt' | 'api-token';
}
