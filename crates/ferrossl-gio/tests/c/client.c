/* A GTlsClientConnection over a GSocketClient connection to a TLS server on 127.0.0.1.
 *
 * Usage: client PORT CA_FILE trusted|untrusted
 * trusted: handshake with ALPN, send a line, read its reversal, close with close_notify.
 * echo: the same with a server that sends the line back as it is (gnutls-serv --echo).
 * untrusted: accept-certificate must see UNKNOWN_CA, refuse it, and the handshake fail with
 * G_TLS_ERROR_BAD_CERTIFICATE.
 * cas: handshake with a server that asks for (but does not require) a client certificate,
 * then print the CA names it accepts ("accepted-cas N", one "ca-name-bytes LEN" each).
 * resume: against `openssl s_server -www`, fetch the page twice, the second connection
 * resuming the first one's session (g_tls_client_connection_copy_session_state); print each
 * page's first "New," or "Reused," line as "page1 ..." and "page2 ...".
 * binding: handshake, then print the tls-exporter and tls-server-end-point channel bindings
 * ("exporter HEX", "server-end-point HEX") and check tls-unique is refused in TLS 1.3.
 * Prints "ok <check>" per check passed; exits 1 at the first failure. */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  return FALSE;
}

/* Prints one channel binding as "NAME HEX" (upper case, as openssl prints keying material). */
static void
print_binding (GTlsConnection *conn, GTlsChannelBindingType type, const char *name)
{
  GError *error = NULL;
  GByteArray *data = g_byte_array_new ();
  g_tls_connection_get_channel_binding_data (conn, type, data, &error);
  must (error, name);
  check (name, data->len == 32, NULL);
  printf ("%s ", name);
  for (guint i = 0; i < data->len; i++)
    printf ("%02X", data->data[i]);
  printf ("\n");
  g_byte_array_unref (data);
}

/* A GET of "/" on a new TLS connection to 127.0.0.1:PORT, resuming `previous`'s session if
 * given; returns the connection (closed) and stores the page's "New,"/"Reused," line. */
static GIOStream *
fetch_page (GSocketClient *client, guint16 port, GTlsDatabase *db, GIOStream *previous, gchar **line)
{
  GError *error = NULL;
  GSocketConnection *sock = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  must (error, "connect");
  GSocketConnectable *identity = g_network_address_new ("localhost", port);
  GIOStream *tls = g_tls_client_connection_new (G_IO_STREAM (sock), identity, &error);
  must (error, "new connection");
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);
  if (previous)
    g_tls_client_connection_copy_session_state (G_TLS_CLIENT_CONNECTION (tls),
                                                G_TLS_CLIENT_CONNECTION (previous));
  const char request[] = "GET / HTTP/1.0\r\n\r\n";
  g_output_stream_write_all (g_io_stream_get_output_stream (tls), request, strlen (request), NULL, NULL, &error);
  must (error, "write request");
  GString *page = g_string_new (NULL);
  char buf[4096];
  gssize n;
  while ((n = g_input_stream_read (g_io_stream_get_input_stream (tls), buf, sizeof buf, NULL, &error)) > 0)
    g_string_append_len (page, buf, n);
  must (error, "read page");
  *line = NULL;
  gchar **lines = g_strsplit (page->str, "\n", -1);
  for (gchar **l = lines; *l && !*line; l++)
    if (g_str_has_prefix (*l, "New,") || g_str_has_prefix (*l, "Reused,"))
      *line = g_strdup (*l);
  g_strfreev (lines);
  g_string_free (page, TRUE);
  g_io_stream_close (tls, NULL, NULL);
  g_object_unref (identity);
  g_object_unref (sock);
  return tls;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  if (argc != 4)
    return 2;
  guint16 port = (guint16) atoi (argv[1]);
  gboolean trusted = strcmp (argv[3], "untrusted") != 0;
  gboolean binding = strcmp (argv[3], "binding") == 0;
  gboolean cas = strcmp (argv[3], "cas") == 0;
  gboolean echo = strcmp (argv[3], "echo") == 0;

  GSocketClient *client = g_socket_client_new ();
  g_socket_client_set_timeout (client, 10);

  if (strcmp (argv[3], "resume") == 0)
    {
      GTlsDatabase *db = g_tls_file_database_new (argv[2], &error);
      must (error, "database");
      gchar *line1, *line2;
      GIOStream *first = fetch_page (client, port, db, NULL, &line1);
      GIOStream *second = fetch_page (client, port, db, first, &line2);
      printf ("page1 %s\npage2 %s\n", line1 ? line1 : "?", line2 ? line2 : "?");
      g_object_unref (first);
      g_object_unref (second);
      return 0;
    }

  GSocketConnection *sock = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  must (error, "connect");
  GSocketConnectable *identity = g_network_address_new ("localhost", port);
  GIOStream *tls = g_tls_client_connection_new (G_IO_STREAM (sock), identity, &error);
  must (error, "new connection");
  check ("type", is_backend_type (tls, "FerrosslClientConnection"),
         G_OBJECT_TYPE_NAME (tls));
  GTlsDatabase *db = g_tls_file_database_new (argv[2], &error);
  must (error, "database");
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);
  const char *protocols[] = { "x-ferrossl", "http/1.1", NULL };
  g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (tls), protocols);
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);

  gboolean shaken = g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error);
  if (!trusted)
    {
      check ("refused", !shaken && g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE),
             error ? error->message : "handshake succeeded");
      check ("signal", signal_calls == 1 && signal_errors == G_TLS_CERTIFICATE_UNKNOWN_CA, NULL);
      g_clear_error (&error);
    }
  else
    {
      must (error, "handshake");
      check ("no-signal", signal_calls == 0, NULL);
      GTlsConnection *conn = G_TLS_CONNECTION (tls);
      if (cas)
        {
          GList *names = g_tls_client_connection_get_accepted_cas (G_TLS_CLIENT_CONNECTION (tls));
          printf ("accepted-cas %u\n", g_list_length (names));
          for (GList *l = names; l; l = l->next)
            printf ("ca-name-bytes %u\n", ((GByteArray *) l->data)->len);
          g_list_free_full (names, (GDestroyNotify) g_byte_array_unref);
          g_io_stream_close (tls, NULL, &error);
          must (error, "close");
          return 0;
        }
      if (binding)
        {
          print_binding (conn, G_TLS_CHANNEL_BINDING_TLS_EXPORTER, "exporter");
          print_binding (conn, G_TLS_CHANNEL_BINDING_TLS_SERVER_END_POINT, "server-end-point");
          GByteArray *unique = g_byte_array_new ();
          gboolean got = g_tls_connection_get_channel_binding_data (conn, G_TLS_CHANNEL_BINDING_TLS_UNIQUE,
                                                                    unique, &error);
          check ("no-tls-unique-in-1.3", !got && g_error_matches (error, G_TLS_CHANNEL_BINDING_ERROR,
                                                                  G_TLS_CHANNEL_BINDING_ERROR_NOT_SUPPORTED),
                 error ? error->message : "tls-unique given");
          g_clear_error (&error);
          g_byte_array_unref (unique);
          g_io_stream_close (tls, NULL, &error);
          must (error, "close");
          return 0;
        }
      check ("peer-errors", g_tls_connection_get_peer_certificate_errors (conn) == 0, NULL);
      /* Borrowed from the connection: it must stay valid after the getter returns. */
      GTlsCertificate *peer = g_tls_connection_get_peer_certificate (conn);
      gchar *subject = peer ? g_tls_certificate_get_subject_name (peer) : NULL;
      check ("peer-certificate", subject && strstr (subject, "CN=localhost"), peer ? (subject ? subject : "no subject name") : "no peer certificate");
      check ("same-peer-certificate", peer == g_tls_connection_get_peer_certificate (conn), NULL);
      g_free (subject);
      check ("alpn", g_strcmp0 (g_tls_connection_get_negotiated_protocol (conn), "x-ferrossl") == 0,
             g_tls_connection_get_negotiated_protocol (conn));
      GTlsProtocolVersion version = g_tls_connection_get_protocol_version (conn);
      check ("protocol-version", version == G_TLS_PROTOCOL_VERSION_TLS_1_2
                                     || version == G_TLS_PROTOCOL_VERSION_TLS_1_3, NULL);
      printf ("version %d\n", version);
      gchar *suite = g_tls_connection_get_ciphersuite_name (conn);
      check ("ciphersuite", suite != NULL && g_str_has_prefix (suite, "TLS_"), suite);
      g_free (suite);

      const char line[] = "hello ferrossl\n";
      g_output_stream_write_all (g_io_stream_get_output_stream (tls), line, strlen (line), NULL, NULL, &error);
      must (error, "write");
      GDataInputStream *in = g_data_input_stream_new (g_io_stream_get_input_stream (tls));
      g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
      gchar *reply = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
      must (error, "read");
      check ("echo", g_strcmp0 (reply, echo ? "hello ferrossl" : "lssorref olleh") == 0, reply);
      g_free (reply);
      g_object_unref (in);
      g_io_stream_close (tls, NULL, &error);
      must (error, "close");
      check ("closed", g_io_stream_is_closed (G_IO_STREAM (sock)), NULL);
    }
  g_object_unref (tls);
  g_object_unref (db);
  g_object_unref (identity);
  g_object_unref (sock);
  g_object_unref (client);
  return 0;
}
