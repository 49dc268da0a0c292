/* A GDtlsServerConnection on UDP 127.0.0.1:PORT for one DTLS client.
 *
 * Usage: dtls_server PORT CHAIN_FILE KEY_FILE CA_FILE anonymous|required|reject|pair [1.2|1.3]
 * The last argument is the DTLS version the handshake must reach (default 1.2), as for
 * dtls_client; the cipher suite is printed as "ciphersuite NAME".
 * Prints "listening", then waits for the client's first datagram (peeked, to learn the
 * client's address and connect the socket to it, as GIO's own DTLS tests do), runs the
 * handshake (requiring a client certificate from CA_FILE with "required": GIO asks
 * accept-certificate about every client certificate, and the handler accepts one without
 * problems), answers one datagram with its reversal and closes. Prints "ok <check>" per check
 * passed. reject: a client certificate required, and the client's (from another CA) must reach
 * accept-certificate with UNKNOWN_CA and fail the handshake with G_TLS_ERROR_BAD_CERTIFICATE.
 * pair: for dtls_client in its "pair" mode: the first datagram is "hello dtls"; after the
 * reversal, send "again" a moment later, then wait for the client's close_notify (its
 * g_dtls_connection_shutdown of the write side reads here as no message: the end), send "bye"
 * 1.5 s later (the client still reads), and close. */
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
on_accept_certificate (GDtlsConnection *conn, GTlsCertificate *cert,
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
  if (argc != 6 && argc != 7)
    return 2;
  gboolean dtls13 = argc == 7 && strcmp (argv[6], "1.3") == 0;
  gboolean reject = strcmp (argv[5], "reject") == 0;
  gboolean required = reject || strcmp (argv[5], "required") == 0;
  gboolean pair = strcmp (argv[5], "pair") == 0;
  alarm (20); /* never hang */

  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  must (error, "socket");
  GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *address = g_inet_socket_address_new (loopback, (guint16) atoi (argv[1]));
  g_socket_bind (sock, address, FALSE, &error);
  must (error, "bind");
  printf ("listening\n");
  fflush (stdout);

  char peek[1];
  GInputVector peek_vector = { peek, sizeof peek };
  GSocketAddress *client = NULL;
  gint peek_flags = G_SOCKET_MSG_PEEK;
  g_socket_receive_message (sock, &client, &peek_vector, 1, NULL, NULL, &peek_flags, NULL, &error);
  must (error, "peek");
  g_socket_connect (sock, client, NULL, &error);
  must (error, "connect");

  GTlsCertificate *cert = g_tls_certificate_new_from_files (argv[2], argv[3], &error);
  must (error, "certificate");
  GDatagramBased *dtls = g_dtls_server_connection_new (G_DATAGRAM_BASED (sock), cert, &error);
  must (error, "new connection");
  check ("type", is_backend_type (dtls, "FerrosslDtlsServerConnection"),
         G_OBJECT_TYPE_NAME (dtls));
  GDtlsConnection *conn = G_DTLS_CONNECTION (dtls);
  g_signal_connect (dtls, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);
  if (required)
    {
      GTlsDatabase *db = g_tls_file_database_new (argv[4], &error);
      must (error, "database");
      g_dtls_connection_set_database (conn, db);
      g_object_set (dtls, "authentication-mode", G_TLS_AUTHENTICATION_REQUIRED, NULL);
    }
  gboolean shaken = g_dtls_connection_handshake (conn, NULL, &error);
  if (reject)
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
  GTlsProtocolVersion version = g_dtls_connection_get_protocol_version (conn);
  check ("protocol-version",
         version == (dtls13 ? G_TLS_PROTOCOL_VERSION_UNKNOWN : G_TLS_PROTOCOL_VERSION_DTLS_1_2), NULL);
  gchar *suite = g_dtls_connection_get_ciphersuite_name (conn);
  check ("ciphersuite", suite != NULL && g_str_has_prefix (suite, "TLS_")
                        && (dtls13 ? strstr (suite, "_WITH_") == NULL : TRUE), suite);
  printf ("ciphersuite %s\n", suite);
  g_free (suite);
  GTlsCertificate *peer = g_dtls_connection_get_peer_certificate (conn);
  if (required)
    {
      gchar *subject = peer ? g_tls_certificate_get_subject_name (peer) : NULL;
      check ("client-certificate", subject && strstr (subject, "ferrossl test client"), subject);
      check ("client-trusted", g_dtls_connection_get_peer_certificate_errors (conn) == 0, NULL);
      check ("asked-about-a-good-certificate", signal_calls == 1 && signal_errors == 0, NULL);
      g_free (subject);
    }
  else
    check ("no-client-certificate", peer == NULL && signal_calls == 0, NULL);

  char buf[2048] = { 0 };
  GInputVector in_vector = { buf, sizeof buf - 1 };
  GInputMessage in = { NULL, &in_vector, 1, 0, 0, NULL, NULL };
  g_datagram_based_receive_messages (dtls, &in, 1, 0, 10 * G_USEC_PER_SEC, NULL, &error);
  must (error, "receive");
  g_strchomp (buf);
  check ("read", strcmp (buf, pair ? "hello dtls" : "hello from s_client") == 0, buf);
  gchar *reply = g_strconcat (g_strreverse (buf), "\n", NULL);
  GOutputVector out_vector = { reply, strlen (reply) };
  GOutputMessage out = { NULL, &out_vector, 1, 0, NULL, 0 };
  g_datagram_based_send_messages (dtls, &out, 1, 0, -1, NULL, &error);
  must (error, "send");
  if (pair)
    {
      g_usleep (200 * 1000); /* the client waits for it on its GSource by now */
      const char again[] = "again\n";
      GOutputVector again_vector = { again, strlen (again) };
      GOutputMessage again_out = { NULL, &again_vector, 1, 0, NULL, 0 };
      g_datagram_based_send_messages (dtls, &again_out, 1, 0, -1, NULL, &error);
      must (error, "send again");
      /* The client tries a cancelled and a timed-out receive (about 3 s), then shuts down
       * its write side. */
      memset (buf, 0, sizeof buf);
      in.bytes_received = 99;
      gint got = g_datagram_based_receive_messages (dtls, &in, 1, 0, 15 * G_USEC_PER_SEC, NULL, &error);
      must (error, "receive close_notify");
      gchar *seen = g_strdup_printf ("%d message(s), %" G_GSIZE_FORMAT " bytes: %s", got, in.bytes_received, buf);
      check ("peer-shut-down-writing", got == 0, seen);
      g_free (seen);
      g_usleep (1500 * 1000); /* past the client's socket timeout */
      const char bye[] = "bye\n";
      GOutputVector bye_vector = { bye, strlen (bye) };
      GOutputMessage bye_out = { NULL, &bye_vector, 1, 0, NULL, 0 };
      g_datagram_based_send_messages (dtls, &bye_out, 1, 0, -1, NULL, &error);
      must (error, "send bye");
      check ("sent-after-peer-shutdown", bye_out.bytes_sent == strlen (bye), NULL);
    }
  g_dtls_connection_close (conn, NULL, &error);
  must (error, "close");
  check ("closed", TRUE, NULL);
  return 0;
}
