"""AMQP probe for the rabbitmq scenario. Credentials come from AMQP_USER and AMQP_PASSWORD.

python3 amqp_probe.py [--tls CA|system] HOST:PORT VHOST login|publish EXCHANGE KEY BODY|get QUEUE
Prints OK, the body, EMPTY, or the broker's refusal; exits 0 unless the probe itself broke.
"""

import argparse
import os
import ssl
import sys

import amqp


def connect(args):
    options = {}
    if args.tls:
        # py-amqp 5.1 takes wrap options, and verifies the certificate and host name with these.
        options["ssl"] = {
            # "system": the host's default trust store only (which does not hold the test CA).
            "ca_certs": None if args.tls == "system" else args.tls,
            "cert_reqs": ssl.CERT_REQUIRED,
            "server_hostname": args.address.rsplit(":", 1)[0],
        }
        if args.cert:
            options["ssl"].update(certfile=args.cert, keyfile=args.key)
    return amqp.Connection(
        host=args.address,
        virtual_host=args.vhost,
        userid=os.environ["AMQP_USER"],
        password=os.environ["AMQP_PASSWORD"],
        connect_timeout=10,
        **options,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", metavar="CA")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("address")
    parser.add_argument("vhost")
    parser.add_argument("action", choices=["login", "publish", "get"])
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    try:
        with connect(args) as conn:
            channel = conn.channel()
            if args.action == "publish":
                exchange, key, body = args.rest
                channel.confirm_select()
                channel.basic_publish(amqp.Message(body), exchange=exchange, routing_key=key)
            elif args.action == "get":
                message = channel.basic_get(args.rest[0], no_ack=True)
                print(message.body if message else "EMPTY")
                return 0
            print("OK")
    except (amqp.exceptions.AMQPError, ConnectionError, ssl.SSLError, OSError) as err:
        print(f"REFUSED {type(err).__name__}: {err}")
    return 0


sys.exit(main())
