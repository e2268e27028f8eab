package org.xdsi.interop;

import ihe.iti.xds_b._2007.RetrieveDocumentSetRequestType.DocumentRequest;
import ihe.iti.xds_b._2007.RetrieveDocumentSetResponseType;
import ihe.iti.xds_b._2007.RetrieveDocumentSetResponseType.DocumentResponse;
import ihe.rad.xdsi_b._2009.ImagingDocumentSource;
import ihe.rad.xdsi_b._2009.ImagingDocumentSourcePortType;
import ihe.rad.xdsi_b._2009.RetrieveImagingDocumentSetRequestType;
import ihe.rad.xdsi_b._2009.RetrieveImagingDocumentSetRequestType.StudyRequest;
import ihe.rad.xdsi_b._2009.RetrieveImagingDocumentSetRequestType.StudyRequest.SeriesRequest;
import ihe.rad.xdsi_b._2009.RetrieveImagingDocumentSetRequestType.TransferSyntaxUIDList;
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.soap.AddressingFeature;
import javax.xml.ws.soap.MTOMFeature;
import javax.xml.ws.soap.SOAPFaultException;
import oasis.names.tc.ebxml_regrep.xsd.rs._3.RegistryError;
import oasis.names.tc.ebxml_regrep.xsd.rs._3.RegistryResponseType;

/**
 * A JAX-WS RI Imaging Document Consumer, configured as dcm4che's wadows tool and RSNA's
 * retrievecontent are (SOAP 1.2 port, WS-Addressing required, MTOM): sends one RAD-69 request
 * and writes every returned document to {@code <out>/<DocumentUniqueId>.dcm}.
 *
 * <p>Arguments: {@code <wsdl-url> <request-file> <out-dir>}. The request file has one line
 * {@code TS <uid> [<uid>...]} and then one line per document:
 * {@code <study> <series> <sop> <repository>}. Printed: {@code STATUS <urn>},
 * {@code ERROR <code> <severity> <location>}, {@code DOC <uid> <bytes>}; a SOAP fault prints
 * {@code FAULT <code> <reason>} and exits 3.
 */
public final class RetrieveClient {

    private RetrieveClient() {
    }

    public static void main(String[] args) throws Exception {
        URL wsdl = new URL(args[0]);
        List<String> lines = Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8);
        Path out = Paths.get(args[2]);
        Files.createDirectories(out);

        RetrieveImagingDocumentSetRequestType request = new RetrieveImagingDocumentSetRequestType();
        TransferSyntaxUIDList tsList = new TransferSyntaxUIDList();
        Map<String, StudyRequest> studies = new LinkedHashMap<>();
        Map<String, SeriesRequest> series = new LinkedHashMap<>();
        for (String line : lines) {
            String[] f = line.trim().split("\\s+");
            if (f.length == 0 || f[0].isEmpty()) {
                continue;
            }
            if (f[0].equals("TS")) {
                for (int i = 1; i < f.length; i++) {
                    tsList.getTransferSyntaxUID().add(f[i]);
                }
                continue;
            }
            StudyRequest study = studies.computeIfAbsent(f[0], uid -> {
                StudyRequest s = new StudyRequest();
                s.setStudyInstanceUID(uid);
                request.getStudyRequest().add(s);
                return s;
            });
            SeriesRequest seriesRequest = series.computeIfAbsent(f[0] + "/" + f[1], key -> {
                SeriesRequest s = new SeriesRequest();
                s.setSeriesInstanceUID(f[1]);
                study.getSeriesRequest().add(s);
                return s;
            });
            DocumentRequest doc = new DocumentRequest();
            doc.setDocumentUniqueId(f[2]);
            doc.setRepositoryUniqueId(f[3]);
            seriesRequest.getDocumentRequest().add(doc);
        }
        request.setTransferSyntaxUIDList(tsList);

        ImagingDocumentSourcePortType port = new ImagingDocumentSource(wsdl)
                .getImagingDocumentSourcePortSoap12(
                        new AddressingFeature(true, true), new MTOMFeature(true));
        // Stream the request (like RSNA retrievecontent) instead of buffering it.
        ((BindingProvider) port).getRequestContext()
                .put("com.sun.xml.ws.transport.http.client.streaming.chunk.size", 8192);

        RetrieveDocumentSetResponseType response;
        try {
            response = port.imagingDocumentSourceRetrieveImagingDocumentSet(request);
        } catch (SOAPFaultException e) {
            System.out.println("FAULT " + e.getFault().getFaultCodeAsQName() + " "
                    + e.getFault().getFaultString());
            System.exit(3);
            return;
        }
        RegistryResponseType registry = response.getRegistryResponse();
        System.out.println("STATUS " + registry.getStatus());
        if (registry.getRegistryErrorList() != null) {
            for (RegistryError e : registry.getRegistryErrorList().getRegistryError()) {
                System.out.println("ERROR " + e.getErrorCode() + " " + e.getSeverity() + " "
                        + e.getLocation());
            }
        }
        for (DocumentResponse doc : response.getDocumentResponse()) {
            Path file = out.resolve(doc.getDocumentUniqueId() + ".dcm");
            try (InputStream in = doc.getDocument().getInputStream()) {
                long size = Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
                System.out.println("DOC " + doc.getDocumentUniqueId() + " " + size + " "
                        + doc.getMimeType() + " " + doc.getRepositoryUniqueId());
            }
        }
    }
}
