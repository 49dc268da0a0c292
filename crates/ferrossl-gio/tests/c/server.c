/* A GTlsServerConnection on 127.0.0.1:PORT for one TLS client.
 *
 * Usage: server PORT CHAIN_FILE KEY_FILE CA_FILE anonymous|required|reject
 * anonymous: no client certificate asked; required: one from CA_FILE required; reject: one
 * required, and the client's (from another CA) must reach accept-certificate with UNKNOWN_CA
 * and fail the handshake with G_TLS_ERROR_BAD_CERTIFICATE.
 * Prints "listening", then "ok <check>" per check passed; exits 1 at the first failure. */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
check (const char *name, gboolean ok, const char *detail)
{
  if (!ok)
    {
      fprintf (stderr, "FAILED %s: %s\n", name, detail ? detail : "");
      exit (1);
    }
  printf ("ok %s\n", name);
  fflush (stdout);
}

static void
must (GError *error, const char *what)
{
  if (error)
    {
      fprintf (stderr, "FAILED %s: %s\n", what, error->message);
      exit (1);
    }
}

/* Whether OBJ is of the type the selected backend makes: OURS, or with GIO_USE_TLS=gnutls one
 * of glib-networking's GnuTLS types (the tests run these programs against that backend too, to
 * show that they test what GIO promises). */
static gboolean
is_backend_type (gpointer obj, const char *ours)
{
  const char *name = G_OBJECT_TYPE_NAME (obj);
  if (g_strcmp0 (g_getenv ("GIO_USE_TLS"), "gnutls") == 0)
    return strstr (name, "Gnutls") != NULL;
  return strcmp (name, ours) == 0;
}

static int signal_calls;
static GTlsCertificateFlags signal_errors;

static gboolean
on_accept_certificate (GTlsConnection *conn, GTlsCertificate *cert,
                       GTlsCertificateFlags errors, gpointer data)
{
  signal_calls++;
  signal_errors = errors;
  /* GIO asks a server about every client certificate: accept the ones without problems. */
  return errors == 0;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  if (argc != 6)
    return 2;
  const char *mode = argv[5];
  gboolean wants_client_cert = strcmp (mode, "anonymous") != 0;

  GSocketListener *listener = g_socket_listener_new ();
  GSocketAddress *address = g_inet_socket_address_new_from_string ("127.0.0.1", (guint) atoi (argv[1]));
  g_socket_listener_add_address (listener, address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 NULL, NULL, &error);
  must (error, "listen");
  printf ("listening\n");
  fflush (stdout);
  /* Never wait for a client forever. */
  alarm (20);
  GSocketConnection *sock = g_socket_listener_accept (listener, NULL, NULL, &error);
  must (error, "accept");
  g_socket_set_timeout (g_socket_connection_get_socket (sock), 10);

  GTlsCertificate *cert = g_tls_certificate_new_from_files (argv[2], argv[3], &error);
  must (error, "certificate");
  GIOStream *tls = g_tls_server_connection_new (G_IO_STREAM (sock), cert, &error);
  must (error, "new connection");
  check ("type", is_backend_type (tls, "FerrosslServerConnection"),
         G_OBJECT_TYPE_NAME (tls));
  const char *protocols[] = { "x-ferrossl", NULL };
  g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (tls), protocols);
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);
  if (wants_client_cert)
    {
      GTlsDatabase *db = g_tls_file_database_new (argv[4], &error);
      must (error, "database");
      g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);
      g_object_unref (db);
      g_object_set (tls, "authentication-mode", G_TLS_AUTHENTICATION_REQUIRED, NULL);
    }

  gboolean shaken = g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error);
  if (strcmp (mode, "reject") == 0)
    {
      check ("refused", !shaken && g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE),
             error ? error->message : "handshake succeeded");
      check ("signal", signal_calls == 1 && signal_errors == G_TLS_CERTIFICATE_UNKNOWN_CA, NULL);
      return 0;
    }
  if (error)
    fprintf (stderr, "accept-certificate: %d call(s), flags 0x%x\n", signal_calls, signal_errors);
  must (error, "handshake");
  check ("handshake", TRUE, NULL);
  GTlsConnection *conn = G_TLS_CONNECTION (tls);
  check ("alpn", g_strcmp0 (g_tls_connection_get_negotiated_protocol (conn), "x-ferrossl") == 0, NULL);
  GTlsProtocolVersion version = g_tls_connection_get_protocol_version (conn);
  check ("protocol-version", version == G_TLS_PROTOCOL_VERSION_TLS_1_2
                                 || version == G_TLS_PROTOCOL_VERSION_TLS_1_3, NULL);
  GTlsCertificate *peer = g_tls_connection_get_peer_certificate (conn);
  if (wants_client_cert)
    {
      gchar *subject = peer ? g_tls_certificate_get_subject_name (peer) : NULL;
      check ("client-certificate", subject && strstr (subject, "ferrossl test client"), subject);
      check ("client-trusted", g_tls_connection_get_peer_certificate_errors (conn) == 0, NULL);
      check ("asked-about-a-good-certificate", signal_calls == 1 && signal_errors == 0, NULL);
      g_free (subject);
    }
  else
    check ("no-client-certificate", peer == NULL, NULL);

  GDataInputStream *in = g_data_input_stream_new (g_io_stream_get_input_stream (tls));
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  gchar *line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  must (error, "read");
  check ("read", g_strcmp0 (line, "hello from s_client") == 0, line);
  gchar *reply = g_strconcat (g_strreverse (line), "\n", NULL);
  g_output_stream_write_all (g_io_stream_get_output_stream (tls), reply, strlen (reply), NULL, NULL, &error);
  must (error, "write");
  g_io_stream_close (tls, NULL, &error);
  must (error, "close");
  check ("closed", g_io_stream_is_closed (G_IO_STREAM (sock)), NULL);
  return 0;
}
